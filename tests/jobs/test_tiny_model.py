"""The embedded tiny model is generated offline and byte-for-byte reproducibly."""

import hashlib
import json

import pytest
from job_helpers import explain

pytestmark = pytest.mark.docker


def digests(directory):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(directory.iterdir())}


def test_two_generations_are_identical(jobs, tmp_path):
    for name in ("a", "b"):
        result = jobs.run(str(tmp_path / name), cwd=tmp_path, module="ftimg_jobs.model.tiny_model")
        assert result.returncode == 0, explain(result)
    first, second = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert first == second
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(first)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"],
            config["num_attention_heads"], config["num_key_value_heads"]) == ("llama", 64, 2, 4, 2)
    tokenizer_config = json.loads((tmp_path / "a" / "tokenizer_config.json").read_text())
    assert tokenizer_config["padding_side"] == "left" and tokenizer_config["pad_token"] == "<pad>"
    assert "chat_template" in tokenizer_config or (tmp_path / "a" / "chat_template.jinja").is_file()
