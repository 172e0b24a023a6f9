"""One job per output: a lock file held while a job writes its output directory (training) or file (infer).

The lock file (JSON: run, job, container, host, pid, started) appears atomically, complete: it is
written under a temporary name, kernel-locked (flock) and then hard-linked into place, which fails
if another job got there first. While the job runs it keeps the flock; the kernel drops it when the
process dies however it dies (SIGKILL, ``docker kill``, OOM), across containers that share a host
and, on NFSv4, across hosts once the dead client's lease ends. So "is the holder alive?" is asked of
the kernel: if we can take its flock, the holder is gone and its lock is stale.

Where flock works a job never holds the lock without it. Where a filesystem has no flock (some FUSE
and Lustre mounts), liveness falls back to the holder's own record: a holder in our own pid namespace
on the same boot (not "the same hostname": containers on ``--network host`` share the host's name and
each runs its job as pid 1) whose pid is dead, or is ours while the holder id differs, is stale;
otherwise a heartbeat (the holder touches the file every HEARTBEAT_SECONDS) older than
STALE_AFTER_SECONDS is. Each process names itself with a random holder id, so it never mistakes
another process's record for its own.

Only the global rank 0 process takes the lock (several ranks or nodes share one output); the lock
is removed on every exit Python sees (normal, error, SIGTERM's sys.exit(143)).
"""

import atexit
import errno
import fcntl
import json
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ftimg_jobs.errors import JobError

LOCK_FILE_NAME = "ftimg-lock.json"
HEARTBEAT_SECONDS = 30
STALE_AFTER_SECONDS = 300
# flock is missing on these filesystems; any other error is a real failure.
NO_FLOCK_ERRORS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")
# Open descriptors of stale lock files we took over: their flock keeps racing jobs out until we exit.
STALE_FDS: list = []
# This process, whatever its hostname and pid (shared by containers on --network host).
HOLDER_ID = uuid.uuid4().hex
# Docker bind-mounts /etc/hostname from /var/lib/docker/containers/<id>/, so mountinfo names the container.
CONTAINER_ID_PATTERN = re.compile(r"/containers/([0-9a-f]{64})/")


class OutputLockedError(JobError):
    """Another live job holds this output; the message names it and the ways out."""


def lock_path_for_directory(output_dir) -> Path:
    return Path(output_dir) / LOCK_FILE_NAME


def lock_path_for_file(output_file) -> Path:
    return Path(str(output_file) + ".lock")


def held_output(lock_path: Path) -> Path:
    """The output directory or file a lock file stands for."""
    if lock_path.name == LOCK_FILE_NAME:
        return lock_path.parent
    return lock_path.with_name(lock_path.name[:-len(".lock")])


def boot_id() -> Optional[str]:
    """Identifies the running kernel: shared by every container of one host, new after a reboot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def pid_namespace() -> Optional[str]:
    """``pid:[4026532193]``: one per container (a restarted container gets a new one), shared by a host's processes."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def container_id() -> Optional[str]:
    """The Docker container we run in (its 64-hex id), or None outside Docker or where it cannot be told."""
    try:
        match = CONTAINER_ID_PATTERN.search(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return None
    return match.group(1) if match else None


def holder_record(job: str, env: dict) -> dict:
    """Who is taking the lock, and what another job should tell its user to stop it."""
    hostname = socket.gethostname()
    in_container = any(os.path.exists(marker) for marker in CONTAINER_MARKERS)
    container = container_id() if in_container else None
    return {
        "run": env.get("FTIMG_RUN_NAME") or (f"slurm job {env['SLURM_JOB_ID']}" if env.get("SLURM_JOB_ID")
                                             else f"{job} (pid {os.getpid()})"),
        "job": job,
        "slurm_job_id": env.get("SLURM_JOB_ID") or None,
        "run_name": env.get("FTIMG_RUN_NAME") or None,
        "container": container[:12] if container else (hostname if in_container else None),
        "host": env.get("SLURMD_NODENAME") or (None if in_container else hostname),
        "hostname": hostname,
        "holder_id": HOLDER_ID,
        "boot_id": boot_id(),
        "pid_namespace": pid_namespace(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def describe_holder(record: dict) -> str:
    where = ", ".join(f"{key} {record[key]}" for key in ("container", "host") if record.get(key))
    return (f"run {record.get('run', '?')} ({record.get('job', '?')}; {where or 'host ?'}; "
            f"pid {record.get('pid', '?')}, started {record.get('started', '?')})")


def how_to_stop(record: dict) -> str:
    """A Slurm job by its id, an `ftimg run` container by its name, anything else by its pid where it runs."""
    if record.get("slurm_job_id"):
        return f"`scancel {record['slurm_job_id']}`"
    if record.get("run_name"):
        return f"`ftimg stop {record['run_name']}`"
    if record.get("container"):
        return f"`docker stop {record['container']}`"
    return f"`kill {record.get('pid', 'PID')}` on {record.get('host') or 'its host'}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def stale_without_flock(record: dict, mtime: float, now: float, here: dict) -> bool:
    """The fallback rule where the kernel cannot tell: a holder in our pid namespace on this boot whose pid is
    dead, or is ours under another holder id (an earlier process of ours that had our pid), or a heartbeat gone
    quiet. The hostname alone proves nothing: containers on --network host share it, and their pids too."""
    if record.get("holder_id") and record.get("holder_id") == here.get("holder_id"):
        return False  # our own lock
    same_process_space = (record.get("pid_namespace") is not None and here.get("pid_namespace") is not None
                          and record.get("pid_namespace") == here["pid_namespace"]
                          and record.get("boot_id") == here["boot_id"])
    if same_process_space and isinstance(record.get("pid"), int):
        return record["pid"] == here["pid"] or not pid_alive(record["pid"])
    return now - mtime > STALE_AFTER_SECONDS


def read_record(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def try_flock(fd) -> Optional[bool]:
    """True: we hold it now; False: a live process holds it; None: this filesystem has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        if error.errno in NO_FLOCK_ERRORS:
            return None
        raise


def same_file(fd, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@dataclass
class RunLock:
    """A held lock; ``took_over`` is the stale holder's record when we replaced one."""

    path: Path
    fd: int
    record: dict
    took_over: Optional[dict]
    kernel_locked: bool

    def manifest_entry(self) -> dict:
        return {"path": str(self.path), "holder": self.record, "took_over_stale_lock": self.took_over}

    def release(self) -> None:
        if self.fd < 0:
            return
        # Remove only our own file: a later job may have taken over a lock we were thought dead for.
        if same_file(self.fd, self.path):
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = -1


def write_candidate(path: Path, record: dict):
    """A complete lock file under a temporary name of its own, flocked where the filesystem can:
    (temp path, fd, kernel_locked).

    mkstemp picks a random name and creates it with O_EXCL: two jobs with one hostname and pid (containers
    on --network host each run theirs as pid 1) never write, flock or unlink each other's candidate.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, (json.dumps(record, indent=2) + "\n").encode())
        os.fsync(fd)
        flocked = try_flock(fd)
        if flocked is False:  # no one else can know this name: a filesystem that lies about locks
            raise OutputLockedError(f"{path}: could not flock a new lock file of our own; is the filesystem "
                                    "sharing locks oddly? give this run an output on another filesystem")
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    return temporary, fd, flocked is True


def acquire(path, job: str, what_to_do: str, env: Optional[dict] = None) -> RunLock:
    """Take the lock at ``path`` or raise OutputLockedError naming the holder and ``what_to_do``.

    A stale lock (its holder is gone) is taken over; the returned lock says whose it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = holder_record(job, dict(os.environ) if env is None else env)
    temporary, fd, kernel_locked = write_candidate(path, record)
    took_over = None
    try:
        for _attempt in range(20):
            try:
                os.link(temporary, path)  # atomic: fails if a lock file is already there
                return finish(path, fd, record, took_over, kernel_locked, temporary)
            except FileExistsError:
                pass
            stale = stale_holder(path, record)
            if stale is None:
                continue  # the file went away or changed under us: look again
            if stale is False:
                holder = read_record(path)
                raise OutputLockedError(
                    f"{held_output(path)} is in use by {describe_holder(holder)}; one job per output "
                    f"(lock file {path}). Wait for it to finish, stop it ({how_to_stop(holder)}), or {what_to_do}")
            took_over = stale
            os.replace(temporary, path)  # we hold the stale file's flock, so no one else is replacing it
            return finish(path, fd, record, took_over, kernel_locked, None)
        raise OutputLockedError(f"{path}: could not take the lock (it kept changing); is another job starting?")
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise


def stale_holder(path: Path, here: dict):
    """The stale holder's record (we may replace its file), False if it is alive, None to retry.

    A True flock result is held until this process exits, so two jobs cannot both take one stale lock.
    """
    try:
        # Read-write: NFS emulates flock with POSIX locks, whose exclusive kind needs a writable fd.
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    except PermissionError:
        return False  # another user's lock we cannot test: treat it as held
    try:
        record = read_record(path)
        flocked = try_flock(fd)
        if flocked is False:
            return False
        if not same_file(fd, path):
            return None
        if flocked is None and not stale_without_flock(record, os.fstat(fd).st_mtime, time.time(), here):
            return False
        STALE_FDS.append(fd)  # keep its flock until we exit, so a racing job waits for our new file
        fd = -1
        return record or {"unreadable": str(path)}
    finally:
        if fd >= 0:
            os.close(fd)


def finish(path: Path, fd: int, record: dict, took_over, kernel_locked: bool, temporary) -> RunLock:
    if temporary is not None:
        temporary.unlink(missing_ok=True)
    lock = RunLock(path, fd, record, took_over, kernel_locked)
    atexit.register(lock.release)
    if not kernel_locked:
        start_heartbeat(lock)
    return lock


def start_heartbeat(lock: RunLock) -> None:
    """Without flock, others judge our liveness by the file's mtime; keep it fresh."""
    def beat():
        while lock.fd >= 0:
            time.sleep(HEARTBEAT_SECONDS)
            if lock.fd >= 0:
                try:
                    os.utime(lock.path)
                except OSError:
                    pass  # removed by release() between the check and the touch

    threading.Thread(target=beat, name="ftimg-lock-heartbeat", daemon=True).start()


def is_global_rank_zero(env: dict) -> bool:
    """Global rank 0 holds the lock for all ranks and nodes (they share the output)."""
    return int(env.get("RANK", "0") or 0) == 0
