"""Helpers shared by the end-to-end job tests."""

import json
from pathlib import Path

# Keep CPU runs small: a couple of steps on the tiny model with short sequences.
SMALL = ["--max_steps", "2", "--model_max_length", "128", "--per_device_train_batch_size", "4"]


def read_run(output_dir) -> dict:
    return json.loads((Path(output_dir) / "run.json").read_text(encoding="utf-8"))


def write_jsonl(path, rows):
    Path(path).write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return Path(path)


def explain(result) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}"
