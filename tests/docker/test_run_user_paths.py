"""`ftimg run` speaks in the user's terms: errors name the path typed, not the container's /mnt/host one."""

import pytest
from tracked import containers, ftimg  # noqa: F401

pytestmark = pytest.mark.docker


def test_a_bad_data_file_is_named_as_typed_and_no_memlock_warning(train_image, tmp_path, containers):
    (tmp_path / "my data").mkdir()
    (tmp_path / "my data" / "bad.jsonl").write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n')
    code, out, err = ftimg("run", "--image", train_image, "--name", "ftimg-test-user-paths", "lora-sft",
                           "--train_data", "my data/bad.jsonl", "--output_dir", "out", cwd=tmp_path, timeout=300)
    containers.append("ftimg-test-user-paths")
    assert code == 2, err
    error = next((line for line in (out + err).splitlines() if "error:" in line), "")
    assert "my data/bad.jsonl:2" in error and "/mnt/host" not in error, out + err
    assert "memlock" not in out + err
