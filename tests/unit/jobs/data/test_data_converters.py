"""The converter table's newer formats: tool calling, typed content parts, per-turn weights, raw text (torch-free)."""

import json

import pytest
from char_tokenizer import CharTokenizer, trained_text

from ftimg_jobs.data.formats import Conversion, load_sft_examples, to_sft_example
from ftimg_jobs.data.records import Record
from ftimg_jobs.data.spec import build_conversion
from ftimg_jobs.data.tokenization import IGNORE_INDEX, render, tokenize_example
from ftimg_jobs.errors import JobError

WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def convert(fields, fmt, conversion=Conversion()):
    return to_sft_example(Record("d.jsonl:1", 1, fields), fmt, conversion)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_openai_tool_calls_and_tool_turns_become_the_common_shape():
    example = convert({"tools": [WEATHER], "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "21 °C."}]}, "messages")
    assert [m["role"] for m in example.messages] == ["user", "assistant", "tool", "assistant"]
    assert example.messages[1]["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}, "id": "c1"}]
    assert example.tools == ({"type": "function", "function": WEATHER},)


def test_sharegpt_function_call_and_observation_with_a_tools_string():
    example = convert({"tools": json.dumps([WEATHER]), "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
        {"from": "observation", "value": "21"},
        {"from": "gpt", "value": "21 °C."}]}, "sharegpt")
    assert [m["role"] for m in example.messages] == ["user", "assistant", "tool", "assistant"]
    assert example.messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert example.tools[0]["function"]["name"] == "get_weather"


def test_tools_fall_back_to_text_for_a_template_without_tool_support():
    example = convert({"tools": [WEATHER], "messages": [
        {"role": "user", "content": "Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather",
                                                                          "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "21"},
        {"role": "assistant", "content": "21 °C."}]}, "messages")
    tokenizer = CharTokenizer()
    text = render(tokenizer, example.messages, add_generation_prompt=False, tools=example.tools)
    assert text.startswith("<system>You can call these tools.")
    assert '"name": "get_weather"' in text and "<tool_response>\n21\n</tool_response>" in text
    input_ids, labels = tokenize_example(example, tokenizer, max_length=None, train_on_prompt=False)
    trained = trained_text(input_ids, labels)
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>|' in trained
    assert trained.endswith("21 °C.|") and "tool_response" not in trained


class ToolTemplateTokenizer(CharTokenizer):
    """A template that handles tools itself: they must reach apply_chat_template(tools=...)."""

    chat_template = "{% for tool in tools %}{{ tool }}{% endfor %}{{ message.tool_calls }}"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False, tools=None):
        self.seen_tools = tools
        return super().apply_chat_template(
            [{"role": m["role"], "content": m["content"] or json.dumps(m.get("tool_calls"))} for m in messages],
            add_generation_prompt=add_generation_prompt)


def test_tools_go_through_a_template_that_supports_them():
    tokenizer = ToolTemplateTokenizer()
    render(tokenizer, [{"role": "user", "content": "q"}], add_generation_prompt=True,
           tools=({"type": "function", "function": WEATHER},))
    assert tokenizer.seen_tools == [{"type": "function", "function": WEATHER}]


def test_typed_parts_join_text_and_put_reasoning_first():
    example = convert({"messages": [
        {"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
        {"role": "assistant", "content": [{"type": "reasoning", "value": "add"}, {"type": "text", "value": "4"}]}]},
        "messages")
    assert example.messages[0]["content"] == "2+2?"
    assert example.messages[1]["content"] == "<think>\nadd\n</think>\n\n4"


def test_non_text_part_is_refused_with_its_place():
    with pytest.raises(JobError, match=r"d\.jsonl:1: record 1 messages\[1\]\.content\[1\] must be .*image"):
        convert({"messages": [{"role": "user", "content": [{"type": "image", "url": "x"}]},
                              {"role": "assistant", "content": "a"}]}, "messages")


def test_turn_weight_zero_masks_that_assistant_turn():
    example = convert({"messages": [
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "bad", "weight": 0},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": "good", "weight": 1}]}, "messages")
    assert example.weights == (None, 0, None, 1)
    input_ids, labels = tokenize_example(example, CharTokenizer(), max_length=None, train_on_prompt=False)
    assert trained_text(input_ids, labels) == "good|"


@pytest.mark.parametrize("turn, message", [
    ({"role": "assistant", "content": "a", "weight": 0.5}, r"weight must be 0 \(not trained\) or 1"),
    ({"role": "user", "content": "a", "weight": 1}, "only assistant turns are trained"),
])
def test_bad_weights_are_named(turn, message):
    with pytest.raises(JobError, match=message):
        convert({"messages": [turn, {"role": "assistant", "content": "x"}]}, "messages")


def test_raw_text_is_detected_and_every_token_trained(tmp_path):
    fmt, examples = load_sft_examples(write_jsonl(tmp_path / "t.jsonl", [{"text": "abc"}, {"text": "de"}]))
    assert fmt == "text" and examples[0].text == "abc"
    input_ids, labels = tokenize_example(examples[0], CharTokenizer(), max_length=None, train_on_prompt=False)
    assert input_ids == [1, ord("a"), ord("b"), ord("c"), 2] and labels == input_ids
    assert IGNORE_INDEX not in labels


def test_columns_map_nested_fields_and_sharegpt_tags():
    conversion = Conversion(format="sharegpt", columns={"messages": "chat.turns"},
                            tags={"role_tag": "speaker", "content_tag": "text", "user_tag": "q",
                                  "assistant_tag": "a"})
    example = convert({"chat": {"turns": [{"speaker": "q", "text": "hi"}, {"speaker": "a", "text": "yo"}]}},
                      "sharegpt", conversion)
    assert example.messages == ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"})


def test_placeholders_are_filled_from_the_spec_variables():
    conversion = Conversion(variables={"name": "Ftimg", "author": "us"})
    example = convert({"instruction": "Who are you?", "output": "I am {{name}}, made by {{ author }}; {{other}}."},
                      "alpaca", conversion)
    assert example.messages[-1]["content"] == "I am Ftimg, made by us; {{other}}."


def test_a_non_string_answer_says_how_to_template_it():
    conversion = Conversion(format="alpaca", columns={"prompt": "text", "response": "label"})
    with pytest.raises(JobError, match=r"d\.jsonl:1: record 1 field 'label' must be a string, got dict; "
                                       r".*answer_template such as '\{\{ label \| tojson \}\}'"):
        convert({"text": "t", "label": {"name": ["x"]}}, "alpaca", conversion)


def test_a_spec_naming_a_missing_field_names_it():
    conversion = Conversion(format="alpaca", columns={"prompt": "body.text"})
    with pytest.raises(JobError, match=r"record 1 is missing field 'body\.text' required by the alpaca format"):
        convert({"body": {"title": "t"}, "output": "o"}, "alpaca", conversion)


def test_a_missing_mapped_field_names_the_mapping_that_asked_for_it():
    spec = build_conversion(Conversion(), {"format": "alpaca", "columns": {"prompt": "question"}},
                            "spec.yaml: dataset 'qa'", [])
    flags = build_conversion(spec, {"columns": {"response": "answer"}}, "command-line flags", [])
    with pytest.raises(JobError, match=r"missing field 'question' required by the alpaca format; prompt is mapped "
                                       r"to 'question' by the columns of spec\.yaml: dataset 'qa'"):
        convert({"q": "?", "answer": "a"}, "alpaca", flags)
    with pytest.raises(JobError, match=r"missing field 'answer' .*; response is mapped to 'answer' by the columns "
                                       r"of command-line flags"):
        convert({"question": "?", "output": "o"}, "alpaca", flags)
    with pytest.raises(JobError, match=r"missing field 'instruction' required by the alpaca format$"):
        convert({"output": "o"}, "alpaca", Conversion(format="alpaca"))


def test_without_chat_template_single_turns_become_prompt_and_completion():
    conversion = Conversion(system_prompt="Be brief.", use_chat_template=False)
    example = convert({"instruction": "Hi", "output": "Hello"}, "alpaca", conversion)
    assert (example.prompt, example.completion, example.messages) == ("Be brief.\n\nHi", "Hello", ())
    with pytest.raises(JobError, match="multi-turn"):
        convert({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                              {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]},
                "messages", conversion)
