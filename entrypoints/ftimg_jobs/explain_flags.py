"""How a job takes each flag of a command line brought from another trainer; exit 1 unless it takes them all.

    python -m ftimg_jobs.explain_flags lora-sft --model_id /models/m --train_data d.jsonl --mlfoundry_run_name x

One line per flag: accepted as is, renamed, translated into other settings, read
by the launcher, or refused with what to use instead (flags.json holds the table).
"""

import importlib
import sys

from ftimg_jobs.args.config import canonical_flag
from ftimg_jobs.args.flag_table import TableResult, load_flag_table, split_flags, translate_setting
from ftimg_jobs.args.parser import dataclass_flag_names
from ftimg_jobs.catalogue import find_job, load_catalogue
from ftimg_jobs.errors import JobError

HANDLED_BY_CODE = {"dispatch_batches": "folded into --accelerator_config"}


def job_flag_names(job: str) -> set:
    spec = find_job(load_catalogue(), job)
    return dataclass_flag_names(importlib.import_module(spec.module).ARGUMENT_CLASSES)


ACCEPTED, REFUSED, UNKNOWN = "ok     ", "REFUSED", "UNKNOWN"


def explain(name: str, value, known: set, table: dict) -> tuple:
    """``(ACCEPTED | REFUSED | UNKNOWN, text)`` for one flag; a refusal names what to use instead."""
    name = name.replace("-", "_")
    if name in known:
        return ACCEPTED, "accepted"
    target = canonical_flag(name)
    if target != name:
        return (ACCEPTED, f"renamed to --{target}") if target in known else (UNKNOWN, f"--{target} is not a flag here")
    if name in HANDLED_BY_CODE:
        return ACCEPTED, HANDLED_BY_CODE[name]
    result = TableResult(tokens=[])
    if not translate_setting(name, value, table, result):
        return UNKNOWN, "unknown to this job"
    if result.problems:
        return REFUSED, result.problems[0]
    if name in result.launcher:
        return ACCEPTED, f"read by the launcher: {table['launcher'][name]}"
    implied = " ".join(f"--{key} {setting}" for key, setting in result.implied.items())
    return ACCEPTED, f"stands for {implied}" if implied else "accepted (nothing to change here)"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    try:
        known = job_flag_names(argv[0])
    except JobError as error:
        print(f"explain_flags: error: {error}", file=sys.stderr)
        return 2
    table, statuses = load_flag_table(), set()
    for name, value, _group in split_flags(argv[1:]):
        if name is None:
            continue
        status, text = explain(name.partition("=")[0], value, known, table)
        statuses.add(status)
        print(f"{status} --{name.partition('=')[0]}: {text}")
    return 0 if statuses <= {ACCEPTED} else 1


if __name__ == "__main__":
    sys.exit(main())
