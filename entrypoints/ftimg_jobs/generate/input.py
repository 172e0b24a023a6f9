"""Read and validate the `infer` job's input JSONL (torch-free).

Every line is one JSON object. Its `id` is kept as given (a string or an integer);
a record without one gets its 0-based line number, so a plain prompt list works.
All problems in the file are collected and reported together, each with its
file and line, so a user fixes the file in one pass instead of one error per run.
"""

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Union

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


def read_input_records(path: str, extract_prompt: Callable[[Dict[str, Any]], Any]) -> List[InputRecord]:
    """Parse `path` into records, raising InferInputError that lists every bad line.

    `extract_prompt(fields)` turns one record into its prompt and raises ValueError
    (with a message naming the fields it looked for) when it has none.
    """
    records: List[InputRecord] = []
    problems: List[str] = []
    first_line_of_id: Dict[RecordId, int] = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                fields = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(f"{where}: not valid JSON ({error.msg} at column {error.colno})")
                continue
            if not isinstance(fields, dict):
                problems.append(f"{where}: expected a JSON object, got {type(fields).__name__}")
                continue
            try:
                record_id = _record_id(fields, line_number)
                prompt = extract_prompt(fields)
            except ValueError as error:
                problems.append(f"{where}: {error}")
                continue
            if record_id in first_line_of_id:
                problems.append(
                    f"{where}: duplicate id {record_id!r} (first seen on line {first_line_of_id[record_id]})"
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
