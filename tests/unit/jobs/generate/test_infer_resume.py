"""Resume bookkeeping of the infer job: torn lines, finished and pending ids, final file."""

import json
import os

import pytest

from ftimg_jobs.generate.resume import (
    InferOutputError,
    append_records,
    finished_records,
    part_path,
    parts_dir,
    pending_ids,
    read_complete_records,
    truncate_torn_tail,
    write_final_output,
)


def write_part(output_file, rank, records, torn=""):
    path = part_path(output_file, rank)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.write(torn)
    return path


def test_torn_last_line_is_dropped(tmp_path):
    path = write_part(str(tmp_path / "out.jsonl"), 0, [{"id": 1}, {"id": "二"}], torn='{"id": 3, "gen')
    records, length = read_complete_records(path)
    assert records == [{"id": 1}, {"id": "二"}]
    assert length == len('{"id": 1}\n{"id": "二"}\n'.encode("utf-8"))


def test_invalid_last_line_with_newline_is_dropped(tmp_path):
    path = write_part(str(tmp_path / "out.jsonl"), 0, [{"id": 1}], torn="\x00\x00\n")
    assert read_complete_records(path)[0] == [{"id": 1}]


def test_invalid_line_in_the_middle_is_an_error(tmp_path):
    path = write_part(str(tmp_path / "out.jsonl"), 0, [{"id": 1}], torn='garbage\n{"id": 2}\n')
    with pytest.raises(InferOutputError, match=r"rank-0\.jsonl:2: not valid JSON in the middle"):
        read_complete_records(path)


def test_truncate_then_append_never_glues_onto_a_torn_record(tmp_path):
    path = write_part(str(tmp_path / "out.jsonl"), 0, [{"id": 1}], torn='{"id": 2, "te')
    truncate_torn_tail(path)
    with open(path, "a", encoding="utf-8") as handle:
        append_records(handle, [{"id": 2, "text": "done"}])
    assert read_complete_records(path)[0] == [{"id": 1}, {"id": 2, "text": "done"}]
    assert open(path, encoding="utf-8").read().endswith("\n")


def test_finished_and_pending_over_final_file_and_parts_of_any_rank_count(tmp_path):
    output_file = str(tmp_path / "out.jsonl")
    with open(output_file, "w") as handle:
        handle.write(json.dumps({"id": 0}) + "\n")
    write_part(output_file, 0, [{"id": 2}], torn="{")
    write_part(output_file, 3, [{"id": 4}])
    input_ids = [0, 1, 2, 3, 4]
    finished = finished_records(output_file, input_ids)
    assert sorted(finished) == [0, 2, 4]
    assert pending_ids(input_ids, finished) == [1, 3]


def test_output_of_another_input_is_refused(tmp_path):
    output_file = str(tmp_path / "out.jsonl")
    write_part(output_file, 0, [{"id": "stale"}])
    with pytest.raises(InferOutputError, match="'stale', which is not in the input"):
        finished_records(output_file, [0, 1])


def test_final_output_in_input_order_once_each_and_parts_removed(tmp_path):
    output_file = str(tmp_path / "out.jsonl")
    write_part(output_file, 1, [{"id": "c", "n": 3}, {"id": "a", "n": 1}])
    write_part(output_file, 0, [{"id": "b", "n": 2}], torn='{"id": "a"')
    assert write_final_output(output_file, ["a", "b", "c"]) == 3
    lines = open(output_file, encoding="utf-8").read().splitlines()
    assert [json.loads(line) for line in lines] == [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}]
    assert not os.path.exists(parts_dir(output_file))


def test_final_output_refuses_missing_ids(tmp_path):
    output_file = str(tmp_path / "out.jsonl")
    write_part(output_file, 0, [{"id": "a"}])
    with pytest.raises(InferOutputError, match=r"1 input id\(s\) have no output \(first: 'b'\)"):
        write_final_output(output_file, ["a", "b"])
    assert not os.path.exists(output_file)
