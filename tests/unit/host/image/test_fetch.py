"""The wheelhouse keeps only verified files: mismatches are errors that name the file."""

import hashlib
import http.server
import threading

import pytest

from ftimg.errors import FetchError
from ftimg.image.fetch import fetch_profile
from ftimg.lock.lockfile import Artifact, LockedProfile

PAYLOAD = b"pretend wheel bytes"


@pytest.fixture
def index(tmp_path):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "six-1.16.0-py2.py3-none-any.whl").write_bytes(PAYLOAD)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _profile(url, sha):
    artifact = Artifact("six", "1.16.0", "wheel", "runtime", "six-1.16.0-py2.py3-none-any.whl", url, sha)
    return LockedProfile("p", {"base": {"image": "x"}, "optional": {}}, (artifact,))


def test_fetch_verifies_and_keeps_a_matching_file(index, tmp_path):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    result = fetch_profile(_profile(f"{index}/six-1.16.0-py2.py3-none-any.whl", sha), tmp_path / "wh")
    assert result.downloaded == ["six-1.16.0-py2.py3-none-any.whl"]
    assert (tmp_path / "wh" / "six-1.16.0-py2.py3-none-any.whl").read_bytes() == PAYLOAD
    again = fetch_profile(_profile(f"{index}/six-1.16.0-py2.py3-none-any.whl", sha), tmp_path / "wh")
    assert again.already_present == ["six-1.16.0-py2.py3-none-any.whl"]


def test_hash_mismatch_names_the_file_and_keeps_nothing(index, tmp_path):
    with pytest.raises(FetchError, match="six-1.16.0-py2.py3-none-any.whl: sha256 mismatch"):
        fetch_profile(_profile(f"{index}/six-1.16.0-py2.py3-none-any.whl", "0" * 64), tmp_path / "wh")
    assert list((tmp_path / "wh").iterdir()) == []


def test_missing_file_on_the_index_is_an_error_naming_it(index, tmp_path):
    with pytest.raises(FetchError, match="six-1.16.0-py2.py3-none-any.whl: download from .* failed: 404"):
        fetch_profile(_profile(f"{index}/gone.whl", "0" * 64), tmp_path / "wh")
    assert list((tmp_path / "wh").iterdir()) == []


def test_optional_wheel_without_sha256_is_skipped_with_the_reason(index, tmp_path):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    profile = _profile(f"{index}/six-1.16.0-py2.py3-none-any.whl", sha)
    profile.spec["optional"] = {"flash-attn": {"filename": "fa.whl", "url": f"{index}/fa.whl", "sha256": ""}}
    result = fetch_profile(profile, tmp_path / "wh")
    assert "records no sha256" in result.optional_skipped["flash-attn"]
    assert not (tmp_path / "wh" / "fa.whl").exists()
