"""Read training records (JSON array or JSONL), detect their format, validate them, normalise them.

SFT formats: alpaca (instruction/input/output), sharegpt/vicuna (conversations
with from/value), OpenAI messages (role/content), prompt/completion.
Classification: text/label. Every error names the file and line and says what
to do. Pure Python (no torch), so it is unit-tested on its own.
"""

import json
import random
from dataclasses import dataclass
from pathlib import Path

from ftimg_jobs.errors import JobError

SFT_FORMAT_HELP = ("alpaca {instruction, input (optional), output}, "
                   "sharegpt {conversations: [{from, value}]}, "
                   "messages {messages: [{role, content}]}, "
                   "prompt/completion {prompt, completion}")
CLS_FORMAT_HELP = "text/label {text, label} (label: string or integer for classes, float for regression)"

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "system": "system"}
MESSAGE_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Record:
    """One JSON object and where it came from (``file:line``) for error messages."""

    where: str
    number: int
    data: dict


@dataclass(frozen=True)
class SftExample:
    """A chat (``messages``) rendered with the chat template, or a raw ``prompt`` + ``completion``."""

    messages: tuple = ()
    prompt: str = ""
    completion: str = ""


@dataclass(frozen=True)
class LabelSchema:
    """How labels map to model outputs: classes in id order, or regression (one output)."""

    problem_type: str  # "single_label_classification" or "regression"
    labels: tuple  # original label values in class-id order; empty for regression

    @property
    def num_labels(self) -> int:
        return len(self.labels) if self.labels else 1

    def id2label(self) -> dict:
        return {index: str(label) for index, label in enumerate(self.labels)}

    def label2id(self) -> dict:
        return {str(label): index for index, label in enumerate(self.labels)}

    def encode(self, label):
        return float(label) if self.problem_type == "regression" else self.labels.index(label)

    def to_json(self) -> dict:
        return {"problem_type": self.problem_type, "num_labels": self.num_labels,
                "labels": list(self.labels),
                "id2label": {str(k): v for k, v in self.id2label().items()},
                "label2id": self.label2id()}


def read_records(path) -> list:
    """Read a JSON array of objects or a JSONL file (one object per line) into Records."""
    path = Path(path)
    if not path.is_file():
        raise JobError(f"{path}: data file not found (check --data_path and that its folder is mounted)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise JobError(f"{path}: not UTF-8 text (byte {error.start}); save the file as UTF-8") from None
    if not text.strip():
        raise JobError(f"{path}: file is empty; it needs JSON records, one per line (JSONL) or in a JSON array")
    records = read_json_array(path, text) if text.lstrip().startswith("[") else read_jsonl(path, text)
    if not records:
        raise JobError(f"{path}: contains no records")
    return records


def read_jsonl(path: Path, text: str) -> list:
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise JobError(f"{path}:{line_number}: malformed JSON line ({error.msg} at column {error.colno}); "
                           "each line of a JSONL file must be one complete JSON object") from None
        if not isinstance(data, dict):
            raise JobError(f"{path}:{line_number}: expected a JSON object, got {type(data).__name__}")
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


def detect_sft_format(record: Record) -> str:
    """Name the SFT format of a record from its keys."""
    keys = set(record.data)
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if "instruction" in keys:
        return "alpaca"
    if "prompt" in keys and "completion" in keys:
        return "prompt_completion"
    raise JobError(f"{record.where}: unknown data format; keys seen: {', '.join(sorted(keys)) or '(none)'}. "
                   f"Supported formats: {SFT_FORMAT_HELP}")


def require_string(record: Record, key: str, fmt: str, optional: bool = False) -> str:
    if key not in record.data:
        if optional:
            return ""
        raise JobError(f"{record.where}: record {record.number} is missing field '{key}' "
                       f"required by the {fmt} format")
    value = record.data[key]
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise JobError(f"{record.where}: record {record.number} field '{key}' must be a string, "
                       f"got {type(value).__name__}")
    return value


def chat_messages(record: Record, key: str, role_key: str, content_key: str, roles: dict, fmt: str) -> tuple:
    turns = record.data.get(key)
    if not isinstance(turns, list) or not turns:
        raise JobError(f"{record.where}: record {record.number} field '{key}' must be a non-empty list "
                       f"of {{{role_key}, {content_key}}} objects")
    messages = []
    for turn_number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or role_key not in turn or content_key not in turn:
            raise JobError(f"{record.where}: record {record.number} {key}[{turn_number}] is missing "
                           f"'{role_key}' or '{content_key}' required by the {fmt} format")
        role = roles.get(turn[role_key])
        if role is None:
            raise JobError(f"{record.where}: record {record.number} {key}[{turn_number}] has unknown "
                           f"{role_key} '{turn[role_key]}'; use one of {', '.join(sorted(roles))}")
        if not isinstance(turn[content_key], str):
            raise JobError(f"{record.where}: record {record.number} {key}[{turn_number}].{content_key} "
                           f"must be a string")
        messages.append({"role": role, "content": turn[content_key]})
    if messages[-1]["role"] != "assistant":
        raise JobError(f"{record.where}: record {record.number} must end with an assistant turn "
                       "(it is what the model learns to produce)")
    return tuple(messages)


def to_sft_example(record: Record, fmt: str) -> SftExample:
    """Normalise one record of the given format, raising JobError on missing or mistyped fields."""
    if fmt == "messages":
        return SftExample(messages=chat_messages(record, "messages", "role", "content",
                                                 {role: role for role in MESSAGE_ROLES}, fmt))
    if fmt == "sharegpt":
        return SftExample(messages=chat_messages(record, "conversations", "from", "value", SHAREGPT_ROLES, fmt))
    if fmt == "alpaca":
        instruction = require_string(record, "instruction", fmt)
        extra_input = require_string(record, "input", fmt, optional=True)
        output = require_string(record, "output", fmt)
        system = require_string(record, "system", fmt, optional=True)
        user = f"{instruction}\n\n{extra_input}" if extra_input.strip() else instruction
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}, {"role": "assistant", "content": output}]
        return SftExample(messages=tuple(messages))
    return SftExample(prompt=require_string(record, "prompt", fmt),
                      completion=require_string(record, "completion", fmt))


def load_sft_examples(path) -> tuple:
    """Read and validate an SFT data file; return ``(format name, [SftExample])``."""
    records = read_records(path)
    fmt = detect_sft_format(records[0])
    return fmt, [to_sft_example(record, fmt) for record in records]


def label_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def infer_label_schema(records: list, task_type: str = "auto", source: str = "data") -> LabelSchema:
    """Decide classification vs regression from the label types, or as forced by ``task_type``.

    Strings, integers or booleans → classes (sorted); floats (integers allowed among them) → regression.
    """
    first_of_kind = {}
    for record in records:
        first_of_kind.setdefault(label_kind(record.data["label"]), record.where)
    kinds = set(first_of_kind)
    unsupported = kinds - {"str", "int", "float", "bool"}
    if unsupported:
        kind = sorted(unsupported)[0]
        raise JobError(f"{first_of_kind[kind]}: label must be a string, integer or number, got {kind}")
    numeric = kinds <= {"int", "float"}
    if task_type == "regression" or (task_type == "auto" and "float" in kinds and numeric):
        if not numeric:
            raise JobError(f"{source}: regression needs numeric labels; found "
                           + ", ".join(f"{kind} (first at {first_of_kind[kind]})" for kind in sorted(kinds)))
        return LabelSchema("regression", ())
    if len(kinds) > 1:
        raise JobError(f"{source}: labels have mixed types: "
                       + ", ".join(f"{kind} (first at {first_of_kind[kind]})" for kind in sorted(kinds))
                       + ". Use all strings or all integers for classes, or numbers for regression")
    if kinds == {"float"}:
        raise JobError(f"{source}: float labels mean regression; drop --task_type classification "
                       "or use string/integer class labels")
    labels = tuple(sorted({record.data["label"] for record in records}))
    if len(labels) < 2:
        raise JobError(f"{source}: classification needs at least 2 distinct labels, found {list(labels)}")
    return LabelSchema("single_label_classification", labels)


def load_cls_records(path) -> list:
    """Read and validate a text/label data file."""
    records = read_records(path)
    for record in records:
        missing = [key for key in ("text", "label") if key not in record.data]
        if missing and record.number == 1 and len(missing) == 2:
            raise JobError(f"{record.where}: unknown data format; keys seen: "
                           f"{', '.join(sorted(record.data)) or '(none)'}. Supported format: {CLS_FORMAT_HELP}")
        if missing:
            raise JobError(f"{record.where}: record {record.number} is missing field '{missing[0]}' "
                           "required by the text/label format")
        if not isinstance(record.data["text"], str):
            raise JobError(f"{record.where}: record {record.number} field 'text' must be a string")
    return records


def check_labels_known(records: list, schema: LabelSchema) -> None:
    """Eval labels must be classes seen in training (the label map is fixed by the training data)."""
    if schema.problem_type == "regression":
        for record in records:
            if label_kind(record.data["label"]) not in ("int", "float"):
                raise JobError(f"{record.where}: regression label must be a number, got {record.data['label']!r}")
        return
    for record in records:
        if record.data["label"] not in schema.labels:
            raise JobError(f"{record.where}: label {record.data['label']!r} does not occur in the training data "
                           f"(known labels: {', '.join(map(str, schema.labels))})")


def split_train_eval(items: list, fraction: float, seed: int) -> tuple:
    """Hold out ``fraction`` of the items (at least one when fraction > 0) with a seeded shuffle."""
    if fraction <= 0:
        return list(items), []
    if fraction >= 1:
        raise JobError(f"--val_set_size {fraction} must be below 1 (it is the fraction held out for evaluation)")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    held_out = max(1, round(len(items) * fraction))
    if held_out >= len(items):
        raise JobError(f"--val_set_size {fraction} leaves no training records out of {len(items)}")
    eval_ids = set(order[:held_out])
    return ([item for i, item in enumerate(items) if i not in eval_ids],
            [item for i, item in enumerate(items) if i in eval_ids])
