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
"""

import glob
import json
import os
from typing import Any, Dict, Iterable, List, Tuple

from ftimg_jobs.errors import JobError
from ftimg_jobs.generate.input import RecordId


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


def pending_ids(input_ids: Iterable[RecordId], finished: Dict[RecordId, Any]) -> List[RecordId]:
    """Input ids without a finished record, in input order."""
    return [record_id for record_id in input_ids if record_id not in finished]


def append_record(handle, record: Dict[str, Any]) -> None:
    """Write one record as one line and force it to disk before the next is generated."""
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
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
