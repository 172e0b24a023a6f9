"""Find the checkpoint to resume from (``--resume_from_checkpoint auto`` is the default)."""

import re
from pathlib import Path

from ftimg_jobs.errors import JobError

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
# The Trainer writes trainer_state.json last, so a checkpoint without it was cut
# short (e.g. the job was killed while saving) and must not be resumed from.
COMPLETE_MARKER = "trainer_state.json"
FRESH_VALUES = {"false", "no", "none", "0", ""}
LATEST_VALUES = {"auto", "true", "yes", "1", "latest"}


def latest_checkpoint(output_dir):
    """The complete ``checkpoint-N`` directory with the highest N, or None."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return None
    found = []
    for child in directory.iterdir():
        match = CHECKPOINT_PATTERN.match(child.name)
        if match and child.is_dir() and (child / COMPLETE_MARKER).is_file():
            found.append((int(match.group(1)), child))
    return str(max(found)[1]) if found else None


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
