"""Commands that make and ship images: lock, fetch, base, build, images, verify, push."""

from __future__ import annotations

import json
import sys
import time

import click

from ftimg import engine
from ftimg.cli.common import lock_and_profile, say
from ftimg.errors import FtimgError
from ftimg.image.base import ensure_base
from ftimg.image.build import build_profile
from ftimg.image.fetch import fetch_profile
from ftimg.image.push import push_image
from ftimg.image.verify import verify_image
from ftimg.lock import lockfile
from ftimg.lock.resolve import DEFAULT_INDEX, check_lock, lock_profiles
from ftimg.lock.spec import load_specs
from ftimg.paths import find_project


@click.command()
@click.option("--check", is_flag=True, help="Do not write; fail if the specs and images.lock disagree.")
@click.option("--default-profile", default="cu121-torch2.1", show_default=True,
              help="Profile used when a command is given none.")
@click.option("--index-url", default=DEFAULT_INDEX, show_default=True, help="PEP 691 package index.")
def lock(check, default_profile, index_url):
    """Resolve docker/profiles/*.toml into images.lock.

    Every transitive distribution is resolved for the image's Python and platform
    (not this host's) and pinned to one file with its sha256.

    \b
    Examples:
      ftimg lock             # rewrite images.lock
      ftimg lock --check     # CI: fail when a spec was edited without re-locking
    """
    paths = find_project()
    specs = load_specs(paths.profiles)
    if check:
        differences = check_lock(specs, lockfile.load(paths.lock))
        if differences:
            listing = "\n  ".join(differences)
            raise FtimgError(f"images.lock is out of date with docker/profiles/:\n  {listing}\n"
                             "Run `ftimg lock` (or `make lock`) and commit images.lock.")
        click.echo(f"images.lock matches {len(specs)} profile specs")
        return
    new_lock = lock_profiles(specs, default_profile, index_url, on_progress=say)
    paths.lock.write_text(lockfile.dumps(new_lock))
    for name, profile in sorted(new_lock.profiles.items()):
        click.echo(f"{name}: {len(profile.artifacts)} artifacts, lock hash {profile.lock_hash()[:12]}")


@click.command()
@click.argument("profile", required=False)
def fetch(profile):
    """Download every artifact of PROFILE into the wheelhouse, verifying each sha256.

    Files already present are re-verified. A mismatch or a failed download is an
    error naming the file, and nothing unverified is kept.

    \b
    Examples:
      ftimg fetch                    # the default profile
      ftimg fetch cu130-torch2.11
      FTIMG_WHEELHOUSE=/data/wheels ftimg fetch
    """
    paths, _, locked = lock_and_profile(profile)
    result = fetch_profile(locked, paths.wheelhouse, on_progress=say)
    click.echo(f"{locked.name}: {len(result.downloaded)} downloaded, {len(result.already_present)} already "
               f"verified, {result.total_bytes / (1 << 30):.2f} GiB in {paths.wheelhouse}")
    for name, why in result.optional_skipped.items():
        click.secho(f"optional {name} not fetched, the image is built without it: {why}", fg="yellow", err=True)


@click.command()
@click.argument("profile", required=False)
@click.option("--rebuild", is_flag=True, help="Rebuild the base even if the engine has it.")
def base(profile, rebuild):
    """Make PROFILE's base image exist, built from Debian packages when absent.

    Needs debootstrap and root; no container registry. To use a registry image
    instead, set [base] image in docker/profiles/PROFILE.toml and `ftimg lock`.

    \b
    Examples:
      sudo ftimg base
      ftimg base --rebuild
    """
    paths, _, locked = lock_and_profile(profile)
    client = engine.connect()
    ref = ensure_base(client, locked.spec["base"], paths.build_dir, on_progress=say, rebuild=rebuild)
    click.echo(ref)


@click.command()
@click.argument("profile", required=False)
@click.option("--all", "all_profiles", is_flag=True, help="Build every profile in images.lock.")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer, the stack included.")
@click.option("--skip-fetch", is_flag=True, help="Trust the wheelhouse as it is (it is still hash-checked).")
def build(profile, all_profiles, no_cache, skip_fetch):
    """Build the image of PROFILE (base and wheelhouse first, when needed).

    Tags ftimg/train:PROFILE and ftimg/train:PROFILE-<lock hash>. Build steps stream
    live; a failed build tags nothing.

    \b
    Examples:
      ftimg build                     # default profile
      ftimg build cu130-torch2.11
      ftimg build --all
    """
    paths = find_project()
    lock_ = lockfile.load(paths.lock)
    names = sorted(lock_.profiles) if all_profiles else [lock_.profile(profile).name]
    client = engine.connect()
    for name in names:
        result = build_profile(client, paths, lock_.profile(name), nocache=no_cache, fetch=not skip_fetch,
                               on_progress=say)
        click.echo(f"built {', '.join(result.tags)} ({result.image_id[7:19]}) in {result.seconds:.0f}s"
                   + ("" if result.stack_built else " (stack reused)"))


@click.command()
def images():
    """List the images ftimg built, with profile, lock hash and size.

    \b
    Example:
      ftimg images
    """
    client = engine.connect()
    rows = engine.list_images(client, "org.ftimg.profile")
    if not rows:
        click.echo("no ftimg images; build one with `ftimg build`")
        return
    click.echo(f"{'TAG':48} {'PROFILE':18} {'LOCK':12} {'SIZE':>9}  CREATED")
    for row in sorted(rows, key=lambda r: r.get("Created", 0), reverse=True):
        labels = row.get("Labels") or {}
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.get("Created", 0)))
        for tag in row.get("RepoTags") or ["<none>"]:
            click.echo(f"{tag:48} {labels.get('org.ftimg.profile', ''):18} "
                       f"{labels.get('org.ftimg.lock-hash', '')[:12]:12} {row.get('Size', 0) / 1e9:8.2f}G  {created}")


@click.command()
@click.argument("image")
@click.option("--digest", is_flag=True, help="Also compute the filesystem content digest (reads every file).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(image, digest, as_json):
    """Prove IMAGE matches images.lock: labels, installed distributions, content digest.

    Exits non-zero and prints a diff (- missing, ~ changed, + extra) on drift. Two
    builds of the same lock have the same --digest.

    \b
    Examples:
      ftimg verify ftimg/train:cu121-torch2.1
      ftimg verify --digest registry.example.com/team/train:cu121-torch2.1
    """
    paths = find_project()
    report = verify_image(engine.connect(), image, lockfile.load(paths.lock), with_digest=digest)
    if as_json:
        click.echo(json.dumps(report.__dict__ | {"ok": report.ok}, indent=2))
    else:
        for line in report.differences:
            click.echo(line)
        status = "matches" if report.ok else f"DOES NOT match ({len(report.differences)} differences)"
        click.echo(f"{image}: {status} images.lock profile {report.profile} ({report.checked} distributions)")
        if report.digest:
            click.echo(f"content digest sha256:{report.digest} ({report.files} files)")
    if not report.ok:
        sys.exit(1)


@click.command()
@click.argument("image")
@click.argument("destination", metavar="REGISTRY/REPO[:TAG]")
def push(image, destination):
    """Push IMAGE to REGISTRY/REPO, tagged :<profile>, :<profile>-<lock hash> (and :TAG).

    Uses the credentials `docker login` stored (config.json, credential helpers);
    ftimg never prints or stores them. Prints the pushed manifest digest.

    \b
    Examples:
      docker login registry.example.com
      ftimg push ftimg/train:cu121-torch2.1 registry.example.com/team/train
      ftimg push ftimg/train:cu121-torch2.1 localhost:5000/train:exp42
    """
    result = push_image(engine.connect(), image, destination, on_progress=say)
    for ref in result.refs:
        click.echo(f"{ref}@{result.digest}")
    say(f"pushed {len(result.refs)} tag(s) in {result.seconds:.0f}s, manifest {result.size} bytes")


COMMANDS = (lock, fetch, base, build, images, verify, push)
