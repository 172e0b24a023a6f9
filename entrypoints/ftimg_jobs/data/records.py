"""The one reader of data records, for training and inference alike.

JSON arrays and JSONL are read here, line by line, so that every record knows
its ``file:line`` for error messages. CSV, Parquet and ``datasets.save_to_disk``
folders load through the ``datasets`` library (imported only then, so this module
stays torch-free and importable without it); their records are named
``file:row N``. A folder of data files is read file by file, in name order.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ftimg_jobs.errors import JobError

JSON_SUFFIXES = (".json", ".jsonl")
DATASETS_SUFFIXES = {".csv": "csv", ".parquet": "parquet"}
DATA_SUFFIXES = JSON_SUFFIXES + tuple(DATASETS_SUFFIXES)
# What datasets.save_to_disk writes next to the Arrow files.
SAVED_DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class Record:
    """One JSON object and where it came from (``file:line``) for error messages."""

    where: str
    number: int
    data: dict


def read_text(path: Path) -> str:
    if not path.is_file():
        raise JobError(f"{path}: data file not found (check --data_path and that its folder is mounted)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise JobError(f"{path}: not UTF-8 text (byte {error.start}); save the file as UTF-8") from None
    if not text.strip():
        raise JobError(f"{path}: file is empty; it needs JSON records, one per line (JSONL) or in a JSON array")
    return text


def read_records(path) -> list:
    """Read one data file or folder into Records (JSON array, JSONL, CSV, Parquet, save_to_disk folder)."""
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    suffix = path.suffix.lower()
    if suffix in DATASETS_SUFFIXES and path.is_file():
        return read_with_datasets(path, DATASETS_SUFFIXES[suffix])
    text = read_text(path)
    records = read_json_array(path, text) if text.lstrip().startswith("[") else read_jsonl(path, text)
    if not records:
        raise JobError(f"{path}: contains no records")
    return records


def read_folder(path: Path) -> list:
    if any((path / marker).is_file() for marker in SAVED_DATASET_MARKERS):
        return read_saved_dataset(path)
    files = sorted(child for child in path.iterdir() if child.is_file() and child.suffix.lower() in DATA_SUFFIXES)
    if not files:
        raise JobError(f"{path}: folder holds no data files ({', '.join(DATA_SUFFIXES)}) "
                       "and is not a datasets.save_to_disk folder")
    records = []
    for file in files:
        for record in read_records(file):
            records.append(Record(record.where, len(records) + 1, record.data))
    return records


def rows_to_records(where: str, rows) -> list:
    records = [Record(f"{where} row {index}", index, dict(row)) for index, row in enumerate(rows, start=1)]
    if not records:
        raise JobError(f"{where}: contains no records")
    return records


def read_with_datasets(path: Path, builder: str) -> list:
    import datasets

    try:
        table = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as error:  # datasets wraps parser errors in many types; the message is what matters
        raise JobError(f"{path}: cannot be read as {builder.upper()}: {str(error).splitlines()[0]}") from None
    return rows_to_records(str(path), table)


def read_saved_dataset(path: Path) -> list:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise JobError(f"{path}: saved DatasetDict has splits {', '.join(loaded)} but no 'train'; "
                           "point --data_path at one split's folder")
        loaded = loaded["train"]
    return rows_to_records(str(path), loaded)


def json_lines(path: Path, text: str):
    """Yield ``(line number, object or None, problem or None)`` for every non-blank JSONL line."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            yield line_number, None, (f"{path}:{line_number}: malformed JSON line ({error.msg} at column "
                                      f"{error.colno}); each line of a JSONL file must be one complete JSON object")
            continue
        if not isinstance(data, dict):
            yield line_number, None, f"{path}:{line_number}: expected a JSON object, got {type(data).__name__}"
            continue
        yield line_number, data, None


def read_jsonl(path: Path, text: str) -> list:
    records = []
    for line_number, data, problem in json_lines(path, text):
        if problem:
            raise JobError(problem)
        records.append(Record(f"{path}:{line_number}", len(records) + 1, data))
    return records


def skip_whitespace(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def read_json_array(path: Path, text: str) -> list:
    """Decode a JSON array element by element so each record knows its line number."""
    decoder = json.JSONDecoder()
    index = skip_whitespace(text, text.index("[") + 1)
    records = []
    while index < len(text) and text[index] != "]":
        line_number = text.count("\n", 0, index) + 1
        try:
            data, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as error:
            raise JobError(f"{path}:{error.lineno}: malformed JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(data, dict):
            raise JobError(f"{path}:{line_number}: expected a JSON object, got {type(data).__name__}")
        records.append(Record(f"{path}:{line_number}", len(records) + 1, data))
        index = skip_whitespace(text, index)
        if index < len(text) and text[index] == ",":
            index = skip_whitespace(text, index + 1)
        elif index < len(text) and text[index] != "]":
            line_number = text.count("\n", 0, index) + 1
            raise JobError(f"{path}:{line_number}: malformed JSON (expected ',' or ']' between records)")
    if index >= len(text):
        raise JobError(f"{path}: malformed JSON (the array is never closed with ']')")
    if text[index + 1:].strip():
        line_number = text.count("\n", 0, index + 1) + 1
        raise JobError(f"{path}:{line_number}: unexpected text after the closing ']'")
    return records


def field_value(data: dict, dotted: str):
    """``data["a"]["b"]`` for ``"a.b"``; raises KeyError naming the first missing part."""
    value = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(part)
        value = value[part]
    return value


def has_field(data: dict, dotted: str) -> bool:
    try:
        field_value(data, dotted)
    except KeyError:
        return False
    return True
