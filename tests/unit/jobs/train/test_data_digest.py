"""The fingerprint's data hash covers --dataset_spec, every file it resolves to, and data folders."""

import json

from ftimg_jobs.run_manifest import file_sha256
from ftimg_jobs.train.data_digest import training_data_sha256


class DataArgs:
    def __init__(self, **given):
        self.dataset_spec, self.data_format, self.columns, self.system_prompt = None, "auto", None, None
        self.prompt_template = self.answer_template = self.use_chat_template = self.template_variables = None
        self.eval_data_path = None
        self.data_path = None
        self.__dict__.update(given)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_lone_file_hashes_as_before_so_older_checkpoints_still_match(tmp_path):
    data = write(tmp_path / "train.jsonl", '{"text": "x"}\n')
    assert training_data_sha256(DataArgs(data_path=str(data))) == file_sha256(data)


def test_a_data_folder_is_walked_in_sorted_order_and_every_file_counts(tmp_path):
    folder = tmp_path / "saved"
    write(folder / "data-00000-of-00001.arrow", "rows")
    write(folder / "state.json", "{}")
    args = DataArgs(data_path=str(folder))
    before = training_data_sha256(args)  # a folder, not IsADirectoryError
    assert training_data_sha256(args) == before
    write(folder / "state.json", '{"changed": 1}')
    assert training_data_sha256(args) != before


def test_the_spec_and_every_file_it_names_are_hashed_not_data_path(tmp_path):
    a = write(tmp_path / "a.jsonl", '{"text": "x"}\n')
    write(tmp_path / "b.jsonl", '{"text": "y"}\n')
    spec = write(tmp_path / "spec.yaml", json.dumps({"datasets": [{"data_path": "a.jsonl"},
                                                                   {"data_path": "b.jsonl"}]}))
    args = DataArgs(dataset_spec=str(spec), data_path=str(a))
    before = training_data_sha256(args)
    write(tmp_path / "b.jsonl", '{"text": "z"}\n')  # a file only the spec names
    after_data = training_data_sha256(args)
    assert after_data != before
    write(tmp_path / "spec.yaml", json.dumps({"format": "text", "datasets": [{"data_path": "a.jsonl"},
                                                                               {"data_path": "b.jsonl"}]}))
    assert training_data_sha256(args) != after_data  # the spec itself (format, templates) counts
