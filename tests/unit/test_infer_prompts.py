"""Prompt extraction from each SFT data format."""

import pytest

from ftimg_jobs.data.prompts import extract_prompt


def test_plain_prompt():
    assert extract_prompt({"prompt": "你好", "completion": "ignored"}) == "你好"


def test_alpaca_becomes_a_user_turn_like_in_training():
    assert extract_prompt({"instruction": "Translate", "input": "猫", "output": "cat"}) == [
        {"role": "user", "content": "Translate\n\n猫"}]
    assert extract_prompt({"instruction": "Say hi", "input": " ", "system": "Be kind."}) == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hi"}]


def test_messages_drop_the_reference_answer():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert extract_prompt({"messages": messages}) == messages[:2]


def test_sharegpt_maps_speakers_to_roles():
    turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Bye"}]
    assert extract_prompt({"conversations": turns}) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]


@pytest.mark.parametrize("fields, message", [
    ({"messages": [{"role": "assistant", "content": "x"}]}, "no turn before"),
    ({"messages": "Hi"}, "must be a list"),
    ({"conversations": [{"from": "bot", "value": "x"}]}, "`from` one of"),
    ({"instruction": ["x"]}, "must be strings"),
    ({"prompt": ""}, "non-empty string"),
    ({"text": "x"}, "no prompt field"),
])
def test_bad_prompts_say_what_is_expected(fields, message):
    with pytest.raises(ValueError, match=message):
        extract_prompt(fields)
