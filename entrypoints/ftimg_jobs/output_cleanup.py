"""``--cleanup_output_dir_on_start true`` (seed 003): empty the output directory before the job starts.

Done by the dispatcher, once, before torchrun starts any worker. Only what lies
inside the output directory is removed, never the directory itself nor anything
a symlink inside it points to; a directory that is ``/``, the home directory or
the working directory is refused, since emptying it would lose unrelated files.
"""

import os
import shutil
from pathlib import Path

from ftimg_jobs.args.config import flag_value, launcher_setting, load_config_file, normalize_flags, \
    split_config_file
from ftimg_jobs.args.flag_table import bool_word
from ftimg_jobs.errors import JobError


def empty_output_dir(output_dir: str) -> int:
    """Remove every entry inside ``output_dir``; the number removed (0 when it does not exist)."""
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
    removed = 0
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed += 1
    return removed


def cleanup_if_asked(job: str, argv: list):
    """Empty the job's output directory when its flags or YAML config ask for it; the directory, or None."""
    config_path, cli = split_config_file(argv)
    config = load_config_file(config_path) if config_path else {}
    asked = launcher_setting(cli, "cleanup_output_dir_on_start") \
        or bool_word(str(config.get("cleanup_output_dir_on_start", "false")))
    if asked != "true":
        return None
    output_dir = flag_value(normalize_flags(cli), "output_dir") or config.get("output_dir") \
        or os.path.join("output", job)
    empty_output_dir(output_dir)
    return output_dir
