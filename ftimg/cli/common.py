"""What the commands share: messages, the project's lock and default image, the container options."""

from __future__ import annotations

import os

import click

from ftimg.image.labels import train_tags
from ftimg.lock import lockfile
from ftimg.paths import find_project


def say(message: str) -> None:
    click.echo(message, err=True)


def lock_and_profile(profile: str | None):
    paths = find_project()
    lock = lockfile.load(paths.lock)
    return paths, lock, lock.profile(profile)


def default_image() -> str:
    """ftimg/train:<default profile of images.lock>, or FTIMG_IMAGE."""
    if os.environ.get("FTIMG_IMAGE"):
        return os.environ["FTIMG_IMAGE"]
    paths = find_project()
    if paths.lock.exists():
        return train_tags(lockfile.load(paths.lock).profile(None))[0]
    return "ftimg/train:cu121-torch2.1"


def raise_keyboard_interrupt(_signum, _frame):
    raise KeyboardInterrupt


JOB_CONTEXT = {"ignore_unknown_options": True, "allow_interspersed_args": False}
CONTAINER_OPTIONS = (
    click.option("--image", help="Train image (default: $FTIMG_IMAGE or ftimg/train:<default profile>)."),
    click.option("--ipc", type=click.Choice(["host", "private", "shareable"]),
                 help="IPC namespace; host shares the host's /dev/shm (then --shm-size does not apply)."),
    click.option("--shm-size", help="Size of the job's /dev/shm [default: 16g, or half the host's memory]."),
    click.option("--ulimit", "ulimits", multiple=True, metavar="NAME=SOFT[:HARD]",
                 help="Override a limit (defaults: memlock=-1, stack=67108864)."),
    click.option("-e", "--env", "env", multiple=True, metavar="NAME[=VALUE]",
                 help="Pass a variable; NAME alone takes the value it has where the job starts. `ftimg run` "
                      "stores the value in the container's configuration, which `docker inspect` shows: give "
                      "secrets with --secret. Files (compose, sbatch) take names only: no value is written."),
    click.option("--secret", "secrets", multiple=True, metavar="NAME[=FILE]",
                 help="Hand the job a secret as the read-only file /run/secrets/NAME, exported as $NAME when it "
                      "starts: NAME alone takes your $NAME, NAME=FILE reads FILE. Unlike -e, no value is in "
                      "`docker inspect`, the compose file or the batch script. Secret flags (--hub_token) go "
                      "the same way."),
    click.option("--hf-cache", type=click.Path(file_okay=False),
                 help="Host directory mounted as the job's Hugging Face cache (HF_HOME)."),
)


def container_options(command):
    """The options of every command that starts the train image (run, compose, sbatch), declared once."""
    for option in reversed(CONTAINER_OPTIONS):
        command = option(command)
    return command
