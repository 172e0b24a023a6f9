"""Show what a job will train on: every example in the common shape, as JSON lines (no model, no torch).

    python -m ftimg_jobs.data.preview --dataset_spec entrypoints/data/ner/ner_spec.yaml
    python -m ftimg_jobs.data.preview --data_path data.jsonl --columns prompt=question,response=answer

Takes the data flags of the SFT jobs (``--task cls`` for the classification jobs'
view). Each line holds the record's ``where`` (file:line), its ``format``, the
``example`` and its ``target``: the last answer (chats, prompt/completion), the
raw text, or the label. A bad record stops with the same error the job would give.
"""

import argparse
import json
import sys
from dataclasses import asdict, fields

from ftimg_jobs.args.dataset_spec import DatasetSpecArguments
from ftimg_jobs.data.loading import data_sources, source_records
from ftimg_jobs.data.formats import detect_format, to_sft_example
from ftimg_jobs.data.labels import cls_record
from ftimg_jobs.errors import JobError


def parse(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ftimg_jobs.data.preview", description=__doc__.splitlines()[0])
    parser.add_argument("--data_path")
    parser.add_argument("--eval_data_path")
    parser.add_argument("--task", choices=("sft", "cls"), default="sft")
    parser.add_argument("--split", choices=("train", "eval"), default="train")
    for spec_field in fields(DatasetSpecArguments):
        kind = (lambda text: text.lower() in ("true", "1", "yes")) if spec_field.name == "use_chat_template" else str
        parser.add_argument(f"--{spec_field.name}", type=kind, default=spec_field.default,
                            help=spec_field.metadata.get("help"))
    return parser.parse_args(argv)


def target_of(example) -> object:
    if example.text:
        return example.text
    if example.messages:
        return example.messages[-1]["content"]
    return example.completion


def preview_lines(args) -> list:
    sources, eval_source = data_sources(args, args.data_path)
    chosen = [eval_source] if args.split == "eval" else list(sources)
    if args.split == "eval" and eval_source is None:
        raise JobError("--split eval: no evaluation data named (--eval_data_path or the spec's eval: entry)")
    lines = []
    for source in chosen:
        records = source_records(source)
        fmt = "cls" if args.task == "cls" else detect_format(records[0], source.conversion)
        for record in records:
            if args.task == "cls":
                converted = cls_record(record, source.conversion)
                lines.append({"where": record.where, "format": fmt, "example": converted.data,
                              "target": converted.data["label"]})
                continue
            example = to_sft_example(record, fmt, source.conversion)
            lines.append({"where": record.where, "format": fmt,
                          "example": {key: value for key, value in asdict(example).items() if value},
                          "target": target_of(example)})
    return lines


def main(argv: list) -> int:
    try:
        lines = preview_lines(parse(argv))
    except JobError as error:
        print(f"preview: {error}", file=sys.stderr)
        return 2
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
