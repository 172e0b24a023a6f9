"""Every command is documented with examples, and bad input exits non-zero with a clear message."""

import pytest
from click.testing import CliRunner

from ftimg.cli import main


def _commands():
    return sorted(main.commands)


@pytest.mark.parametrize("name", _commands())
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"`ftimg {name} --help` shows no example"


def test_unknown_profile_lists_the_known_ones(project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    result = CliRunner().invoke(main, ["fetch", "no-such-profile"])
    assert result.exit_code == 1
    assert "unknown profile 'no-such-profile'" in result.output
    assert "cu121-torch2.1" in result.output


def test_corrupt_lock_is_a_clear_error(tmp_path, project_root, monkeypatch):
    (tmp_path / "docker").symlink_to(project_root / "docker")
    (tmp_path / "images.lock").write_text("lock_version = 1\n[profiles\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["fetch"])
    assert result.exit_code == 1
    assert "images.lock: corrupt TOML" in result.output and "line 2" in result.output


def test_lock_check_names_the_difference(tmp_path, project_root, monkeypatch):
    profiles = tmp_path / "docker" / "profiles"
    profiles.mkdir(parents=True)
    for spec in (project_root / "docker" / "profiles").glob("*.toml"):
        (profiles / spec.name).write_text(spec.read_text().replace('"peft==0.13.2"', '"peft==0.14.0"'))
    (tmp_path / "images.lock").write_text((project_root / "images.lock").read_text())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["lock", "--check"])
    assert result.exit_code == 1
    assert "'peft==0.14.0' is in the spec but not in images.lock" in result.output


def test_unreachable_engine_is_a_clear_error(monkeypatch, project_root):
    monkeypatch.chdir(project_root)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    result = CliRunner().invoke(main, ["images"])
    assert result.exit_code == 1
    assert "cannot reach the Docker engine at tcp://127.0.0.1:9" in result.output
