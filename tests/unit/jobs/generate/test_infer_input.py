"""Input validation of the infer job: every problem reported with file and line."""

import json

import pytest

from ftimg_jobs.generate.input import InferInputError, read_input_records


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_ids_default_to_zero_based_line_numbers(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [
        json.dumps({"prompt": "a"}),
        json.dumps({"id": "x", "prompt": "b"}),
        "",
        json.dumps({"prompt": "c"}),
    ])
    records = read_input_records(path)
    assert [record.id for record in records] == [0, "x", 3]
    assert [record.prompt for record in records] == ["a", "b", "c"]
    assert [record.line_number for record in records] == [1, 2, 4]


def test_malformed_line_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [json.dumps({"prompt": "a"}), '{"prompt": "b"'])
    with pytest.raises(InferInputError, match=r"in\.jsonl:2: malformed JSON line"):
        read_input_records(path)


def test_duplicate_id_names_both_lines(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [
        json.dumps({"id": 7, "prompt": "a"}),
        json.dumps({"id": 7, "prompt": "b"}),
    ])
    with pytest.raises(InferInputError, match=r"in\.jsonl:2: duplicate id 7 \(first seen on line 1\)"):
        read_input_records(path)


def test_missing_prompt_lists_accepted_fields(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [json.dumps({"id": 1, "text": "a"})])
    with pytest.raises(InferInputError, match=r"in\.jsonl:1: no prompt field; expected `messages`"):
        read_input_records(path)


def test_empty_file_is_an_error(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", ["", "  "])
    with pytest.raises(InferInputError, match="has no records"):
        read_input_records(path)


def test_all_problems_reported_together(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", ["nope", json.dumps([1]), json.dumps({"id": None, "prompt": "a"})])
    with pytest.raises(InferInputError) as raised:
        read_input_records(path)
    message = str(raised.value)
    assert message.startswith(f"3 problem(s) in input {path}")
    assert ":1: malformed JSON line" in message
    assert ":2: expected a JSON object, got list" in message
    assert ":3: `id` must be a string or an integer" in message
