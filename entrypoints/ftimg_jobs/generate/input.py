"""Read and validate the `infer` job's input records (torch-free).

Records are read by the same reader as training data (data/records.py) and turned
into prompts by the same converter table (data/formats.py): a prompt is a training
example without its last answer, so one file trains and prompts. Every record's
`id` is kept as given (a string or an integer); a record without one gets its
0-based line number, so a plain prompt list works. In a JSONL file all problems are
collected and reported together, each with its file and line, so a user fixes the
file in one pass instead of one error per run.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Union

from ftimg_jobs.data.formats import PLAIN, Conversion, record_prompt
from ftimg_jobs.data.records import Record, json_lines, read_records
from ftimg_jobs.errors import JobError

RecordId = Union[str, int]

# Enough to show what is wrong without flooding the terminal on a badly broken file.
MAX_REPORTED_PROBLEMS = 20


class InferInputError(JobError):
    """The input file cannot be used; the message lists every problem with file:line."""


@dataclass(frozen=True)
class InputRecord:
    id: RecordId
    line_number: int  # 1-based, as an editor shows it
    prompt: Any  # a string, or a list of chat messages


def _record_id(fields: Dict[str, Any], line_number: int) -> RecordId:
    if "id" not in fields:
        return line_number - 1
    value = fields["id"]
    # bool is an int subclass; an id of `true` is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"`id` must be a string or an integer, got {value!r}")
    return value


def input_lines(path: str, problems: List[str]) -> List[tuple]:
    """``(line number, Record)`` for every readable record; JSONL problems are collected, not raised."""
    file = Path(path)
    text = file.read_text(encoding="utf-8-sig") if file.is_file() else None
    if text is not None and not text.lstrip().startswith("["):
        found = []
        for line_number, data, problem in json_lines(file, text):
            if problem:
                problems.append(problem)
            else:
                found.append((line_number, Record(f"{path}:{line_number}", len(found) + 1, data)))
        return found
    # JSON arrays, CSV, Parquet and dataset folders: the training reader (it stops at the first problem).
    return [(int(record.where.rsplit(":", 1)[-1]) if record.where.rsplit(":", 1)[-1].isdigit() else record.number,
             record) for record in read_records(path)]


def read_input_records(path: str, conversion: Conversion = PLAIN) -> List[InputRecord]:
    """Parse `path` into records, raising InferInputError that lists every bad line."""
    records: List[InputRecord] = []
    problems: List[str] = []
    first_line_of_id: Dict[RecordId, int] = {}
    for line_number, record in input_lines(path, problems):
        try:
            record_id = _record_id(record.data, line_number)
            prompt = record_prompt(record, conversion)
        except ValueError as error:
            problems.append(f"{record.where}: {error}")
            continue
        except JobError as error:
            problems.append(str(error))
            continue
        if record_id in first_line_of_id:
            problems.append(
                f"{record.where}: duplicate id {record_id!r} (first seen on line {first_line_of_id[record_id]})"
            )
        else:
            first_line_of_id[record_id] = line_number
            records.append(InputRecord(record_id, line_number, prompt))
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        tail = f"\n  ... and {more} more" if more else ""
        raise InferInputError(
            f"{len(problems)} problem(s) in input {path}:\n  " + "\n  ".join(shown) + tail
        )
    if not records:
        raise InferInputError(f"input {path} has no records; give a JSONL file with one prompt object per line")
    return records
