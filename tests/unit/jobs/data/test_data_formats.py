"""Format detection, normalisation and every bad-input error of the training data reader (torch-free)."""

import json

import pytest

from ftimg_jobs.data.formats import load_sft_examples
from ftimg_jobs.data.labels import check_labels_known, infer_label_schema, load_cls_records
from ftimg_jobs.data.mixing import split_train_eval
from ftimg_jobs.data.records import read_records
from ftimg_jobs.errors import JobError


def write_jsonl(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n"
                            for row in rows), encoding="utf-8")
    return path


def test_alpaca_json_array_becomes_user_and_assistant_turns(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([
        {"instruction": "翻译", "input": "你好", "output": "hello"},
        {"instruction": "Say hi", "input": "", "output": "hi", "system": "be brief"},
    ], ensure_ascii=False), encoding="utf-8")
    fmt, examples = load_sft_examples(path)
    assert fmt == "alpaca"
    assert examples[0].messages == ({"role": "user", "content": "翻译\n\n你好"},
                                    {"role": "assistant", "content": "hello"})
    assert examples[1].messages[0] == {"role": "system", "content": "be brief"}
    assert examples[1].messages[1]["content"] == "Say hi"


def test_sharegpt_roles_are_mapped(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"conversations": [
        {"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}])
    fmt, examples = load_sft_examples(path)
    assert fmt == "sharegpt"
    assert [m["role"] for m in examples[0].messages] == ["system", "user", "assistant"]


def test_messages_and_prompt_completion_are_detected(tmp_path):
    messages = write_jsonl(tmp_path / "m.jsonl", [{"messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}])
    raw = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "2+2=", "completion": "4"}])
    assert load_sft_examples(messages)[0] == "messages"
    fmt, examples = load_sft_examples(raw)
    assert fmt == "prompt_completion"
    assert (examples[0].prompt, examples[0].completion, examples[0].messages) == ("2+2=", "4", ())


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "a", "completion": "b"}, "", '{"prompt": "x",'])
    with pytest.raises(JobError, match=r"bad\.jsonl:3: malformed JSON line"):
        read_records(path)


def test_malformed_json_array_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]\n')
    with pytest.raises(JobError, match=r"bad\.json:3: malformed JSON"):
        read_records(path)


def test_json_array_records_know_their_line(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text('[\n  {"a": 1},\n\n  {"b": 2}\n]\n')
    assert [record.where for record in read_records(path)] == [f"{path}:2", f"{path}:4"]


def test_unknown_format_lists_keys_seen_and_supported_formats(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(JobError) as error:
        load_sft_examples(path)
    message = str(error.value)
    assert f"{path}:1: unknown data format" in message
    assert "keys seen: answer, question" in message
    for supported in ("alpaca", "sharegpt", "messages", "prompt/completion"):
        assert supported in message


def test_missing_field_names_record_and_line(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"instruction": "a", "output": "b"}, {"instruction": "c", "input": "d"}])
    with pytest.raises(JobError, match=r"m\.jsonl:2: record 2 is missing field 'output' required by the alpaca"):
        load_sft_examples(path)


def test_chat_must_end_with_assistant_and_use_known_roles(tmp_path):
    trailing_user = write_jsonl(tmp_path / "t.jsonl", [{"messages": [{"role": "user", "content": "q"}]}])
    with pytest.raises(JobError, match=r"t\.jsonl:1: record 1 must end with an assistant turn"):
        load_sft_examples(trailing_user)
    bad_role = write_jsonl(tmp_path / "r.jsonl", [{"conversations": [{"from": "robot", "value": "q"}]}])
    with pytest.raises(JobError, match=r"r\.jsonl:1: .*unknown from 'robot'"):
        load_sft_examples(bad_role)


def test_non_string_field_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"prompt": "a", "completion": 4}])
    with pytest.raises(JobError, match=r"n\.jsonl:1: record 1 field 'completion' must be a string, got int"):
        load_sft_examples(path)


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file_says_what_it_needs(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(JobError, match=r"empty\.jsonl: file is empty"):
        read_records(path)


def test_missing_file_names_the_flag(tmp_path):
    with pytest.raises(JobError, match=r"nope\.jsonl: data file not found.*--data_path"):
        read_records(tmp_path / "nope.jsonl")


def test_non_object_line_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "l.jsonl", [{"prompt": "a", "completion": "b"}, '["a", "b"]'])
    with pytest.raises(JobError, match=r"l\.jsonl:2: expected a JSON object, got list"):
        read_records(path)


def cls_records(tmp_path, labels):
    return load_cls_records(write_jsonl(tmp_path / "c.jsonl", [{"text": f"t{i}", "label": label}
                                                                for i, label in enumerate(labels)]))


def test_string_labels_become_sorted_classes(tmp_path):
    schema = infer_label_schema(cls_records(tmp_path, ["正面", "neg", "正面", "neg"]))
    assert schema.problem_type == "single_label_classification"
    assert schema.labels == ("neg", "正面")
    assert schema.id2label() == {0: "neg", 1: "正面"} and schema.label2id() == {"neg": 0, "正面": 1}
    assert schema.encode("正面") == 1 and schema.num_labels == 2


def test_integer_labels_are_classes_and_floats_regression(tmp_path):
    assert infer_label_schema(cls_records(tmp_path, [2, 0, 1])).labels == (0, 1, 2)
    regression = infer_label_schema(cls_records(tmp_path, [1, 2.5, 4]))
    assert (regression.problem_type, regression.num_labels, regression.encode(1)) == ("regression", 1, 1.0)
    forced = infer_label_schema(cls_records(tmp_path, [1, 2, 3]), task_type="regression")
    assert forced.problem_type == "regression"


def test_mixed_label_types_name_where_each_type_starts(tmp_path):
    records = cls_records(tmp_path, ["pos", "neg", 1])
    with pytest.raises(JobError, match=r"mixed types: int \(first at .*c\.jsonl:3\), str \(first at .*c\.jsonl:1\)"):
        infer_label_schema(records, source="c.jsonl")


def test_single_class_is_rejected(tmp_path):
    with pytest.raises(JobError, match="at least 2 distinct labels"):
        infer_label_schema(cls_records(tmp_path, ["a", "a"]))


def test_cls_missing_label_and_unknown_format(tmp_path):
    missing = write_jsonl(tmp_path / "m.jsonl", [{"text": "a", "label": "x"}, {"text": "b"}])
    with pytest.raises(JobError, match=r"m\.jsonl:2: record 2 is missing field 'label'"):
        load_cls_records(missing)
    unknown = write_jsonl(tmp_path / "u.jsonl", [{"sentence": "a", "y": 1}])
    with pytest.raises(JobError, match=r"u\.jsonl:1: unknown data format; keys seen: sentence, y"):
        load_cls_records(unknown)


def test_eval_label_outside_training_classes_is_named(tmp_path):
    schema = infer_label_schema(cls_records(tmp_path, ["a", "b"]))
    eval_records = load_cls_records(write_jsonl(tmp_path / "e.jsonl", [{"text": "x", "label": "c"}]))
    with pytest.raises(JobError, match=r"e\.jsonl:1: label 'c' does not occur in the training data"):
        check_labels_known(eval_records, schema)


def test_split_is_seeded_and_disjoint():
    items = list(range(20))
    train, held_out = split_train_eval(items, 0.25, seed=42)
    assert len(held_out) == 5 and sorted(train + held_out) == items
    assert split_train_eval(items, 0.25, seed=42) == (train, held_out)
    assert split_train_eval(items, 0.0, seed=42) == (items, [])
    with pytest.raises(JobError, match="--val_set_size"):
        split_train_eval(items, 1.0, seed=42)
