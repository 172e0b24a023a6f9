"""Find the checkpoint to resume from (``--resume_from_checkpoint auto`` is the default), and check that
it belongs to the same run (train/fingerprint.py) before anything is loaded; torch-free."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftimg_jobs.errors import JobError
from ftimg_jobs.train.fingerprint import changed_settings, mismatch_message, read_fingerprint

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


def checkpoint_document(checkpoint: str, output_dir) -> Optional[dict]:
    """A checkpoint's own fingerprint; one killed between saving and fingerprinting falls back on its
    output directory's (written when that run began)."""
    return read_fingerprint(checkpoint) or read_fingerprint(output_dir)


def plan_resume(value, output_dir, fingerprint: dict, settings: dict, overwrite_output_dir: bool = False) -> ResumePlan:
    """Decide where training starts; raise JobError (one line: what differs, the ways out) when the
    checkpoint to resume belongs to a different run. Reads files only: the caller acts on the plan.

    ``auto`` resumes the newest checkpoint of this run, so a run started fresh next to another's
    checkpoints (``--resume_from_checkpoint none``) resumes its own after a crash.
    """
    text = "" if value is None else str(value).strip().lower()
    if overwrite_output_dir and text in LATEST_VALUES:
        found = complete_checkpoints(output_dir)
        notes = [f"--overwrite_output_dir: removing {len(found)} checkpoint(s) in {output_dir} and starting fresh"] \
            if found else []
        return ResumePlan(None, remove=found, notes=notes)
    if text in LATEST_VALUES:
        candidates = complete_checkpoints(output_dir)
        resolve_resume(value, output_dir)  # "true" needs one: same error as before
    else:
        chosen = resolve_resume(value, output_dir)
        candidates = [chosen] if chosen else []
    first_mismatch = None
    for checkpoint in candidates:
        document = checkpoint_document(checkpoint, output_dir)
        if document is None:
            return ResumePlan(checkpoint, notes=[f"{checkpoint} has no fingerprint (saved before ftimg "
                                                 "recorded one); resuming it unchecked"])
        if document["fingerprint"] == fingerprint:
            changed = changed_settings(document.get("settings") or {}, settings)
            notes = []
            if first_mismatch:
                notes.append(f"skipped checkpoint(s) of a different run up to {first_mismatch[0]}")
            if changed:
                notes.append("resuming with changed settings: "
                             + ", ".join(f"{key} {old} → {new}" for key, (old, new) in changed.items()))
            return ResumePlan(checkpoint, changed, notes=notes)
        first_mismatch = first_mismatch or (checkpoint, document["fingerprint"])
    if first_mismatch:
        raise JobError(mismatch_message(first_mismatch[0], first_mismatch[1], fingerprint))
    return ResumePlan(None)
