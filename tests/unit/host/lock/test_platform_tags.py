"""Choosing the file of a release for the image's Python and platform, not the host's."""

from ftimg.lock.platform_tags import choose_file, target_tags

TAGS = target_tags("3.11", "x86_64-manylinux_2_36")


def test_prefers_the_most_specific_compatible_wheel():
    files = ["numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "numpy-1.26.4-cp311-cp311-musllinux_1_1_x86_64.whl",
             "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "numpy-1.26.4-cp311-cp311-macosx_11_0_arm64.whl",
             "numpy-1.26.4.tar.gz"]
    assert choose_file(files, "1.26.4", TAGS) == files[0]


def test_rejects_wheels_newer_than_the_image_glibc_and_falls_back_to_sdist():
    files = ["pkg-1.0-cp311-cp311-manylinux_2_39_x86_64.whl", "pkg-1.0.tar.gz"]
    assert choose_file(files, "1.0", TAGS) == "pkg-1.0.tar.gz"


def test_pure_python_wheel_beats_sdist_and_other_versions_are_ignored():
    files = ["six-1.16.0-py2.py3-none-any.whl", "six-1.16.0.tar.gz", "six-1.17.0-py2.py3-none-any.whl"]
    assert choose_file(files, "1.16.0", TAGS) == files[0]
    assert choose_file(["six-1.17.0.tar.gz"], "1.16.0", TAGS) is None


def test_manylinux1_is_accepted_for_torch_2_1():
    files = ["torch-2.1.2-cp311-cp311-manylinux1_x86_64.whl", "torch-2.1.2-cp311-none-macosx_11_0_arm64.whl"]
    assert choose_file(files, "2.1.2", TAGS) == files[0]
