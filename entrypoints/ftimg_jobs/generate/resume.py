"""Exactly-once bookkeeping for the `infer` job's output (torch-free).

Layout for `--output_file OUT.jsonl`:
  OUT.jsonl.parts/rank-<r>.jsonl   records appended by rank r as they finish
  OUT.jsonl                        the final file: every input id once, in input order

Only rank r ever appends to rank-<r>.jsonl, so no two processes write one file.
A record is appended as one line and fsync'ed, so a kill can tear at most the
last line of a part file. Readers ignore a last line that has no newline or is
not valid JSON; the owner truncates it before appending, so a torn record is
dropped and regenerated, never duplicated. After every rank is done, rank 0
writes OUT.jsonl atomically (temp file + rename) and only then removes the parts.
A restart reads OUT.jsonl and every part (any rank count) to find finished ids.

OUT.jsonl.settings.json records what the output was generated from (input sha256, model, adapter,
generation settings, and the sha256 of every rendered prompt with its id, so a changed system prompt,
template, column mapping, chat template or --dataset_spec counts too); a restart with other settings
stops instead of mixing two runs in one file.
It stays next to OUT.jsonl after the parts are gone, so a finished output is protected too.
"""

import glob
import hashlib
import json
import os
from typing import Any, Dict, Iterable, List, Tuple

from ftimg_jobs.errors import JobError
from ftimg_jobs.generate.input import RecordId
from ftimg_jobs.run_manifest import file_sha256

# What decides the text generated for a prompt; batch size and rank count may change on resume.
GENERATION_SETTINGS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "stop",
                       "ignore_eos", "num_beams", "torch_dtype")


class InferOutputError(JobError):
    """Existing output cannot be resumed from; the message says which file and why."""


def parts_dir(output_file: str) -> str:
    return output_file + ".parts"


def part_path(output_file: str, rank: int) -> str:
    return os.path.join(parts_dir(output_file), f"rank-{rank}.jsonl")


def existing_output_files(output_file: str) -> List[str]:
    """The final file (if present) and every part file, whatever rank count wrote them."""
    files = [output_file] if os.path.exists(output_file) else []
    return files + sorted(glob.glob(os.path.join(parts_dir(output_file), "rank-*.jsonl")))


def read_complete_records(path: str) -> Tuple[List[Dict[str, Any]], int]:
    """Records of `path` and the byte length they span, dropping a torn last line.

    A bad line anywhere but last cannot come from a kill mid-append, so it is an error.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    records: List[Dict[str, Any]] = []
    complete_length = 0
    lines = data.split(b"\n")
    # split() leaves the bytes after the last newline as the final element: b"" when the
    # file ends cleanly, otherwise a partly written record.
    for line_number, line in enumerate(lines[:-1], start=1):
        try:
            record = json.loads(line)
        except ValueError:
            if line_number == len(lines) - 1 and lines[-1] == b"":
                break  # torn last line that happened to end in a newline byte
            raise InferOutputError(
                f"{path}:{line_number}: not valid JSON in the middle of the output; the file was edited "
                "or written by something else. Fix or remove that line, or use another --output_file."
            )
        if not isinstance(record, dict) or "id" not in record:
            raise InferOutputError(f"{path}:{line_number}: output record without an `id`; use another --output_file")
        records.append(record)
        complete_length += len(line) + 1
    return records, complete_length


def truncate_torn_tail(path: str) -> None:
    """Cut a torn last line off `path` so the next append starts on a fresh line."""
    if not os.path.exists(path):
        return
    _, complete_length = read_complete_records(path)
    if os.path.getsize(path) != complete_length:
        with open(path, "r+b") as handle:
            handle.truncate(complete_length)
            handle.flush()
            os.fsync(handle.fileno())


def finished_records(output_file: str, input_ids: Iterable[RecordId]) -> Dict[RecordId, Dict[str, Any]]:
    """id -> finished record, over the final file and all part files.

    An id that is not in the input means the output belongs to another input file;
    mixing them silently would break "each input id exactly once", so it is an error.
    """
    known = set(input_ids)
    finished: Dict[RecordId, Dict[str, Any]] = {}
    for path in existing_output_files(output_file):
        for record in read_complete_records(path)[0]:
            if record["id"] not in known:
                raise InferOutputError(
                    f"{path} has id {record['id']!r}, which is not in the input; it holds results of another "
                    "input file. Remove it (and its .parts directory) or choose another --output_file."
                )
            # The same id twice can only follow a crash between writing the final file and
            # removing the parts; both copies are the same finished record, so keep the first.
            finished.setdefault(record["id"], record)
    return finished


def prompts_sha256(input_ids: Iterable[RecordId], texts: Dict[RecordId, str]) -> str:
    """The sha256 of every (id, rendered prompt) in input order: whatever turned records into prompts
    (spec, columns, templates, system prompt, chat template, the tokenizer's template) is in it."""
    digest = hashlib.sha256()
    for record_id in input_ids:
        digest.update((json.dumps([record_id, texts[record_id]], ensure_ascii=False) + "\n").encode())
    return digest.hexdigest()


def output_settings(model_args, adapter_args, generation_args, rendered_prompts_sha256=None) -> Dict[str, Any]:
    """What this output is generated from: input (sha256), the rendered prompts (sha256), model, adapter and
    generation settings."""
    settings = {"input_sha256": file_sha256(generation_args.input_path), "prompts_sha256": rendered_prompts_sha256,
                "model": model_args.model_name_or_path, "adapter": adapter_args.adapter_name_or_path}
    settings.update({name: getattr(generation_args, name, None) for name in GENERATION_SETTINGS})
    # Greedy and beam search ignore the seed; only sampling depends on it.
    settings["seed"] = generation_args.seed if generation_args.do_sample else None
    return settings


def settings_path(output_file: str) -> str:
    return output_file + ".settings.json"


def setting_differences(before: Dict[str, Any], now: Dict[str, Any]) -> List[str]:
    """``["max_new_tokens 64 → 128", ...]``: every setting whose value differs."""
    def show(key, value):
        return str(value)[:12] if key.endswith("sha256") and value else value  # the file keeps the full hash

    # A key the file lacks was not recorded when it was written (prompts_sha256 before it existed): not compared.
    keys = [key for key in now if key in before] + [key for key in before if key not in now]
    return [f"{key} {show(key, before.get(key))} → {show(key, now.get(key))}"
            for key in keys if before.get(key) != now.get(key)]


def check_output_settings(output_file: str, settings: Dict[str, Any]) -> None:
    """Raise InferOutputError (one line) when existing output was generated with other settings.

    Output without a settings file (written before they were recorded) is left to the id check.
    """
    path = settings_path(output_file)
    if not existing_output_files(output_file) or not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        before = json.load(handle)
    changed = setting_differences(before, settings)
    if changed:
        raise InferOutputError(
            f"{output_file} was generated with other settings ({'; '.join(changed)}), so it cannot be resumed: "
            f"remove it (and {os.path.basename(parts_dir(output_file))}, {os.path.basename(path)}) to start "
            "over, or choose another --output_path")


def record_output_settings(output_file: str, settings: Dict[str, Any]) -> None:
    """Write the settings file atomically (temp file + rename)."""
    temporary = settings_path(output_file) + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(settings, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.replace(temporary, settings_path(output_file))


def pending_ids(input_ids: Iterable[RecordId], finished: Dict[RecordId, Any]) -> List[RecordId]:
    """Input ids without a finished record, in input order."""
    return [record_id for record_id in input_ids if record_id not in finished]


def append_records(handle, records: List[Dict[str, Any]]) -> None:
    """Write records that finished together, one line each, and force them to disk with one fsync.

    A kill in between can tear only the last line, which the next run truncates and regenerates.
    """
    handle.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    handle.flush()
    os.fsync(handle.fileno())


def write_final_output(output_file: str, input_ids: List[RecordId]) -> int:
    """Write every finished record once, in input order, to `output_file`; return the count.

    Raises InferOutputError if an input id has no finished record (a rank failed).
    """
    finished = finished_records(output_file, input_ids)
    missing = pending_ids(input_ids, finished)
    if missing:
        raise InferOutputError(
            f"{len(missing)} input id(s) have no output (first: {missing[0]!r}); rerun the same command to resume"
        )
    temporary = output_file + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        for record_id in input_ids:
            handle.write(json.dumps(finished[record_id], ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, output_file)
    for path in glob.glob(os.path.join(parts_dir(output_file), "rank-*.jsonl")):
        os.remove(path)
    if os.path.isdir(parts_dir(output_file)):
        os.rmdir(parts_dir(output_file))
    return len(input_ids)
