"""Classification records (text + label) in the common shape, and how labels map to model outputs (torch-free).

A spec may map the text and label to other fields (``columns: {text: review.body,
label: stars}``) or build the text with a ``prompt_template``; records come out as
``{"text": str, "label": value}`` whatever the input looked like.
"""

from dataclasses import dataclass

from ftimg_jobs.data.formats import PLAIN, Conversion, record_label, template_text
from ftimg_jobs.data.records import Record, field_value, has_field, read_records
from ftimg_jobs.errors import JobError

CLS_FORMAT_HELP = "text/label {text, label} (label: string or integer for classes, float for regression)"


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


def cls_record(record: Record, conversion: Conversion) -> Record:
    text_key, label_key = conversion.column("cls", "text"), conversion.column("cls", "label")
    # A prompt_template builds the text, so only the label field must exist then.
    needed = (label_key,) if conversion.prompt_template else (text_key, label_key)
    missing = [key for key in needed if not has_field(record.data, key)]
    if missing and record.number == 1 and len(missing) == 2:
        raise JobError(f"{record.where}: unknown data format; keys seen: "
                       f"{', '.join(sorted(record.data)) or '(none)'}. Supported format: {CLS_FORMAT_HELP}; "
                       "map other fields with --columns text=FIELD,label=FIELD")
    if missing:
        raise JobError(f"{record_label(record)} is missing field '{missing[0]}' required by the text/label format")
    text = template_text(record, conversion, "prompt_template") if conversion.prompt_template \
        else field_value(record.data, text_key)
    if not isinstance(text, str):
        raise JobError(f"{record_label(record)} field '{text_key}' must be a string, got {type(text).__name__}")
    return Record(record.where, record.number, {"text": text, "label": field_value(record.data, label_key)})


def load_cls_records(path, conversion: Conversion = PLAIN) -> list:
    """Read and validate a text/label data file; records come back as ``{"text", "label"}``."""
    return [cls_record(record, conversion) for record in read_records(path)]


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
