"""Find the checkpoint to resume from (``--resume_from_checkpoint auto`` is the default), and check that
it belongs to the same run (train/fingerprint.py) before anything is loaded; torch-free."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftimg_jobs.errors import JobError
from ftimg_jobs.train.fingerprint import WAYS_OUT, changed_settings, mismatch_message, read_fingerprint, same_run

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
# The Trainer writes trainer_state.json last, so a checkpoint without it was cut
# short (e.g. the job was killed while saving) and must not be resumed from.
COMPLETE_MARKER = "trainer_state.json"
FRESH_VALUES = {"false", "no", "none", "0", ""}
LATEST_VALUES = {"auto", "true", "yes", "1", "latest"}


def complete_checkpoints(output_dir) -> list:
    """Complete ``checkpoint-N`` directories, highest N first."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = CHECKPOINT_PATTERN.match(child.name)
        if match and child.is_dir() and (child / COMPLETE_MARKER).is_file():
            found.append((int(match.group(1)), child))
    return [str(path) for _step, path in sorted(found, reverse=True)]


def latest_checkpoint(output_dir):
    """The complete ``checkpoint-N`` directory with the highest N, or None."""
    found = complete_checkpoints(output_dir)
    return found[0] if found else None


def resolve_resume(value, output_dir):
    """Turn the ``--resume_from_checkpoint`` value into a checkpoint path or None (fresh start).

    ``auto`` (default): newest checkpoint in output_dir if any. ``true``: the same,
    but there must be one. ``false``: start fresh. Anything else: a checkpoint path.
    """
    text = "" if value is None else str(value).strip()
    if text.lower() in FRESH_VALUES:
        return None
    if text.lower() in LATEST_VALUES:
        found = latest_checkpoint(output_dir)
        if found is None and text.lower() != "auto":
            raise JobError(f"--resume_from_checkpoint {text}: no complete checkpoint-* in {output_dir}")
        return found
    if not (Path(text) / COMPLETE_MARKER).is_file():
        raise JobError(f"--resume_from_checkpoint {text}: not a complete checkpoint directory "
                       f"(no {COMPLETE_MARKER}); use auto, false, or a checkpoint-N path")
    return text


@dataclass
class ResumePlan:
    """Where training starts: ``checkpoint`` (None: fresh), the resumable settings that changed since it
    was saved, checkpoints to remove first (--overwrite_output_dir), and notes for the log and run.json."""

    checkpoint: Optional[str]
    changed_settings: dict = field(default_factory=dict)
    remove: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def checkpoint_document(checkpoint: str) -> Optional[dict]:
    """A checkpoint's own fingerprint; one killed between saving and fingerprinting falls back on the
    directory it lies in (its run wrote that when it began), never on this run's --output_dir."""
    return read_fingerprint(checkpoint) or read_fingerprint(Path(checkpoint).parent)


def is_own(checkpoint: str, fingerprint: dict) -> bool:
    document = checkpoint_document(checkpoint)
    return document is not None and same_run(document["fingerprint"], fingerprint)


def plan_overwrite(text: str, output_dir, fingerprint: dict, settings: dict) -> Optional[ResumePlan]:
    """--overwrite_output_dir removes the checkpoints of other runs (and unfingerprinted ones) and keeps this
    run's, so a command that always passes it (seed 001) still resumes its own after a requeue; with
    ``--resume_from_checkpoint none`` it removes them all. None: an explicit checkpoint path, planned as usual."""
    found = complete_checkpoints(output_dir)
    if text in FRESH_VALUES:
        notes = [f"--overwrite_output_dir: removing {len(found)} checkpoint(s) in {output_dir}; starting fresh"]
        return ResumePlan(None, remove=found, notes=notes if found else [])
    if text not in LATEST_VALUES:
        return None
    foreign = [checkpoint for checkpoint in found if not is_own(checkpoint, fingerprint)]
    notes = [f"--overwrite_output_dir: removing {len(foreign)} checkpoint(s) of other runs in {output_dir}"] \
        if foreign else []
    own = [checkpoint for checkpoint in found if checkpoint not in foreign]
    if not own:
        if text != "auto":
            raise JobError(f"--resume_from_checkpoint {text}: no complete checkpoint of this run in {output_dir}")
        return ResumePlan(None, remove=foreign, notes=notes)
    plan = resume_plan(own[0], settings)
    return ResumePlan(plan.checkpoint, plan.changed_settings, remove=foreign, notes=notes + plan.notes)


def resume_plan(checkpoint: str, settings: dict, skipped: Optional[str] = None) -> ResumePlan:
    """Resume ``checkpoint`` (of this run), noting the resumable settings that changed since it was saved."""
    changed = changed_settings(checkpoint_document(checkpoint).get("settings") or {}, settings)
    notes = [f"skipped checkpoint(s) of a different run up to {skipped}"] if skipped else []
    if changed:
        notes.append("resuming with changed settings: "
                     + ", ".join(f"{key} {old} → {new}" for key, (old, new) in changed.items()))
    return ResumePlan(checkpoint, changed, notes=notes)


def plan_resume(value, output_dir, fingerprint: dict, settings: dict, overwrite_output_dir: bool = False) -> ResumePlan:
    """Decide where training starts; raise JobError (one line: what differs, the ways out) when the
    checkpoint to resume belongs to a different run. Reads files only: the caller acts on the plan.

    ``auto`` resumes the newest checkpoint of this run, skipping newer ones of another run.
    ``none`` next to another run's checkpoints is refused: the fresh run would write its checkpoint-N over
    theirs and save_total_limit would rotate theirs away.
    """
    text = "" if value is None else str(value).strip().lower()
    if overwrite_output_dir:
        plan = plan_overwrite(text, output_dir, fingerprint, settings)
        if plan is not None:
            return plan
    if text in FRESH_VALUES:
        foreign = [checkpoint for checkpoint in complete_checkpoints(output_dir) if not is_own(checkpoint, fingerprint)]
        if foreign:
            raise JobError(f"--resume_from_checkpoint {value or 'none'}: {output_dir} holds checkpoints that are not "
                           f"this run's (newest {foreign[0]}), which a fresh run would overwrite or rotate away: "
                           f"use {WAYS_OUT}")
        return ResumePlan(None)
    if text in LATEST_VALUES:
        candidates = complete_checkpoints(output_dir)
        resolve_resume(value, output_dir)  # "true" needs one: same error as before
    else:
        candidates = [resolve_resume(value, output_dir)]
    first_mismatch = None
    for checkpoint in candidates:
        document = checkpoint_document(checkpoint)
        if document is None:
            return ResumePlan(checkpoint, notes=[f"{checkpoint} has no fingerprint (saved before ftimg "
                                                 "recorded one); resuming it unchecked"])
        if same_run(document["fingerprint"], fingerprint):
            return resume_plan(checkpoint, settings, first_mismatch[0] if first_mismatch else None)
        first_mismatch = first_mismatch or (checkpoint, document["fingerprint"])
    if first_mismatch:
        raise JobError(mismatch_message(first_mismatch[0], first_mismatch[1], fingerprint))
    return ResumePlan(None)
