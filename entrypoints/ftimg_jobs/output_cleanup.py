"""``--cleanup_output_dir_on_start true`` (seed 003): empty the output directory before the job starts.

Done by the dispatcher, once, before torchrun starts any worker. Only what lies
inside the output directory is removed, never the directory itself nor anything
a symlink inside it points to; a directory that is ``/``, the home directory or
the working directory is refused, since emptying it would lose unrelated files.

The directory's output lock (run_lock.py) is taken first: a directory another live job holds is
refused with the same error as starting a second job there, never emptied under it. The lock is
released once the directory is empty; the job takes it again when it starts.
"""

import os
import shutil
from pathlib import Path

from ftimg_jobs.args.config import flag_value, launcher_setting, load_config_file, normalize_flags, \
    split_config_file
from ftimg_jobs.args.flag_table import bool_word
from ftimg_jobs.errors import JobError
from ftimg_jobs.run_lock import LOCK_FILE_NAME, acquire, lock_path_for_directory


def empty_output_dir(output_dir: str, job: str = "cleanup") -> int:
    """Remove every entry inside ``output_dir`` while holding its output lock; the number removed (0 when it
    does not exist). Raises OutputLockedError, naming the holder, when a live job holds the directory."""
    directory = Path(output_dir)
    if not directory.exists():
        return 0
    if directory.is_symlink() or not directory.is_dir():
        raise JobError(f"--cleanup_output_dir_on_start: --output_dir {output_dir} is not a plain directory; "
                       "not emptied")
    resolved = directory.resolve()
    protected = {Path("/"), Path.home().resolve(), Path.cwd().resolve()}
    if resolved in protected:
        raise JobError(f"--cleanup_output_dir_on_start: refusing to empty --output_dir {output_dir} "
                       f"({resolved} is /, the home or the working directory); give a directory of its own")
    lock = acquire(lock_path_for_directory(directory), job, "give this run another --output_dir")
    try:
        removed = 0
        for entry in directory.iterdir():
            if entry.name == LOCK_FILE_NAME:
                continue  # ours now; released below
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        return removed
    finally:
        lock.release()


def cleanup_if_asked(job: str, argv: list):
    """Empty the job's output directory when its flags or YAML config ask for it; the directory, or None."""
    config_path, cli = split_config_file(argv)
    config = load_config_file(config_path) if config_path else {}
    asked = launcher_setting(cli, "cleanup_output_dir_on_start") \
        or bool_word(str(config.get("cleanup_output_dir_on_start", "false")))
    if asked != "true":
        return None
    if os.environ.get("NODE_RANK", "0") not in ("", "0"):
        return None  # the nodes share one output: node 0 empties it, before its rank 0 takes the lock
    output_dir = flag_value(normalize_flags(cli), "output_dir") or config.get("output_dir") \
        or os.path.join("output", job)
    empty_output_dir(output_dir, job)
    return output_dir
