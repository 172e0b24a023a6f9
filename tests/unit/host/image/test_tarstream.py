"""The streamed build context is the same tar docker would get, and its errors surface."""

import io
import os
import tarfile

import pytest

from ftimg.image.tarstream import tar_stream


def test_stream_holds_every_file_with_content_mode_and_hardlinks_as_files(tmp_path):
    root = tmp_path / "ctx"
    (root / "wheelhouse").mkdir(parents=True)
    big = os.urandom(3 << 20)  # several chunks
    (root / "wheelhouse" / "a.whl").write_bytes(big)
    os.link(root / "wheelhouse" / "a.whl", tmp_path / "outside.whl")  # a hard link from outside the context
    (root / "install.py").write_text("print(1)\n")
    (root / "install.py").chmod(0o755)
    archive = tarfile.open(fileobj=io.BytesIO(b"".join(tar_stream(root))))
    members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == ["install.py", "wheelhouse", "wheelhouse/a.whl"]
    assert members["wheelhouse"].isdir()
    assert archive.extractfile("wheelhouse/a.whl").read() == big
    assert members["install.py"].mode & 0o777 == 0o755


def test_a_file_that_vanishes_mid_stream_is_an_error_naming_the_context(tmp_path, monkeypatch):
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "kept").write_text("x")
    listed = [root / "kept", root / "vanished.whl"]  # listed, then deleted before it was read
    monkeypatch.setattr("ftimg.image.tarstream._files", lambda _: listed)
    with pytest.raises(OSError, match=r"tarring the build context .*ctx failed: .*vanished.whl"):
        b"".join(tar_stream(root))
