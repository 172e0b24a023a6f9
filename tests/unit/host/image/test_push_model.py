"""`ftimg push`'s pure parts: destination parsing, tags from labels, progress folding, error hints."""

import pytest

from ftimg.errors import FtimgError
from ftimg.image.push import LayerProgress, push_hint, push_tags, split_destination

LABELS = {"org.ftimg.profile": "cu121-torch2.1", "org.ftimg.lock-hash": "e054bce86fcf" + "0" * 52}


@pytest.mark.parametrize("destination, expected", [
    ("registry.example.com/team/train", ("registry.example.com/team/train", None)),
    ("localhost:5000/train", ("localhost:5000/train", None)),
    ("localhost:5000/train:exp42", ("localhost:5000/train", "exp42")),
    ("127.0.0.1:5000/Team/Train:v1.0", ("127.0.0.1:5000/team/train", "v1.0")),
])
def test_split_destination(destination, expected):
    assert split_destination(destination) == expected


@pytest.mark.parametrize("destination", ["train", "localhost:5000/", "host/repo:bad tag", "host/repo:-x"])
def test_bad_destination_says_the_expected_form(destination):
    with pytest.raises(FtimgError):
        split_destination(destination)


def test_tags_are_profile_then_profile_hash12_then_the_given_one():
    assert push_tags(LABELS, None, "img") == ["cu121-torch2.1", "cu121-torch2.1-e054bce86fcf"]
    assert push_tags(LABELS, "exp42", "img") == ["cu121-torch2.1", "cu121-torch2.1-e054bce86fcf", "exp42"]
    assert push_tags(LABELS, "cu121-torch2.1", "img") == ["cu121-torch2.1", "cu121-torch2.1-e054bce86fcf"]
    assert push_tags({}, "v1", "img") == ["v1"]
    with pytest.raises(FtimgError, match="give a tag"):
        push_tags({}, None, "debian:12")


def test_layer_progress_folds_events_into_a_line_every_few_seconds():
    lines = []
    progress = LayerProgress("r/x:t", lines.append, every_s=5)
    progress.update({"status": "The push refers to repository [r/x]"}, now=0.0)
    progress.update({"id": "a", "status": "Pushing", "progressDetail": {"current": 5_000_000, "total": 10_000_000}},
                    now=6.0)
    progress.update({"id": "b", "status": "Layer already exists"}, now=7.0)
    progress.update({"id": "a", "status": "Pushed"}, now=12.0)
    assert lines == ["pushing r/x:t: 0 layers done, 5/10 MB of layers in flight",
                     "pushing r/x:t: 2 layers done, 5/10 MB of layers in flight"]


def test_hints_name_the_fix():
    assert "docker login localhost:5000" in push_hint("unauthorized: authentication required", "localhost:5000/t")
    assert "reachable" in push_hint("Get http://127.0.0.1:9/v2/: dial tcp: connection refused", "127.0.0.1:9/t")
