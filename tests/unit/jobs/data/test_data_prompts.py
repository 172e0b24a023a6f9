"""An inference prompt is a training example without its last answer: one converter table for both."""

import pytest

from ftimg_jobs.data.formats import Conversion, ToolPrompt, record_prompt
from ftimg_jobs.data.records import Record
from ftimg_jobs.errors import JobError


def prompt(fields, conversion=Conversion()):
    return record_prompt(Record("in.jsonl:1", 1, fields), conversion)


def test_plain_prompt():
    assert prompt({"prompt": "你好", "completion": "ignored"}) == "你好"


def test_alpaca_becomes_a_user_turn_like_in_training():
    assert prompt({"instruction": "Translate", "input": "猫", "output": "cat"}) == [
        {"role": "user", "content": "Translate\n\n猫"}]
    assert prompt({"instruction": "Say hi", "input": " ", "system": "Be kind."}) == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hi"}]


def test_messages_drop_the_reference_answer():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert prompt({"messages": messages}) == messages[:2]


def test_sharegpt_maps_speakers_to_roles():
    turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Bye"}]
    assert prompt({"conversations": turns}) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]


def test_tools_travel_with_the_prompt():
    tools = [{"name": "weather", "description": "d", "parameters": {"type": "object", "properties": {}}}]
    result = prompt({"messages": [{"role": "user", "content": "Rain?"}], "tools": tools})
    assert isinstance(result, ToolPrompt) and result == [{"role": "user", "content": "Rain?"}]
    assert result.tools == ({"type": "function", "function": tools[0]},)


def test_spec_columns_and_system_prompt_build_the_prompt_side():
    conversion = Conversion(format="alpaca", columns={"prompt": "text", "response": "label"},
                            system_prompt="Extract entities.")
    assert prompt({"text": "张三在北京大学。"}, conversion) == [
        {"role": "system", "content": "Extract entities."}, {"role": "user", "content": "张三在北京大学。"}]


@pytest.mark.parametrize("fields, message", [
    ({"messages": [{"role": "assistant", "content": "x"}]}, "no turn before"),
    ({"messages": "Hi"}, "must be a non-empty list"),
    ({"conversations": [{"from": "bot", "value": "x"}]}, "unknown from 'bot'; use one of"),
    ({"instruction": ["x"]}, "field 'instruction' must be a string, got list"),
    ({"prompt": ""}, "non-empty string"),
    ({"text": "x"}, "no prompt field"),
])
def test_bad_prompts_say_what_is_expected(fields, message):
    with pytest.raises(JobError, match=message) as error:
        prompt(fields)
    assert str(error.value).startswith("in.jsonl:1")
