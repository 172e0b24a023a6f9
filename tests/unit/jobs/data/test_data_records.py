"""The one record reader: CSV, Parquet and save_to_disk folders through `datasets` (runs where it is installed)."""

import json

import pytest

from ftimg_jobs.data.records import read_records
from ftimg_jobs.errors import JobError


def test_a_folder_of_json_files_reads_in_name_order(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"text": "b"}\n', encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps([{"text": "a"}]), encoding="utf-8")
    records = read_records(tmp_path)
    assert [record.data["text"] for record in records] == ["a", "b"] and [r.number for r in records] == [1, 2]


def test_a_folder_without_data_says_what_it_needs(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(JobError, match="folder holds no data files"):
        read_records(tmp_path)


def test_csv_parquet_and_saved_datasets_load_through_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    (tmp_path / "d.csv").write_text("instruction,output\n你好,hello\nbye,再见\n", encoding="utf-8")
    table = datasets.Dataset.from_list([{"instruction": "q", "output": "a"}])
    table.to_parquet(str(tmp_path / "d.parquet"))
    table.save_to_disk(str(tmp_path / "saved"))
    csv_records = read_records(tmp_path / "d.csv")
    assert csv_records[0].data == {"instruction": "你好", "output": "hello"}
    assert csv_records[1].where == f"{tmp_path / 'd.csv'} row 2"
    assert read_records(tmp_path / "d.parquet")[0].data == {"instruction": "q", "output": "a"}
    assert read_records(tmp_path / "saved")[0].data == {"instruction": "q", "output": "a"}
