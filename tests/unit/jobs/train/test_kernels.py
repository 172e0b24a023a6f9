"""Which Liger kernel serves RoPE (train/kernels.py)."""

import pytest

pytest.importorskip("torch")

from ftimg_jobs.train.kernels import pin_liger_rope  # noqa: E402


def test_rope_goes_to_liger_triton_kernel_when_nothing_is_chosen():
    env = {"PATH": "/bin"}
    assert pin_liger_rope(env) == "nvidia-triton (one compile for every sequence length)"
    assert env == {"PATH": "/bin", "LIGER_KERNEL_IMPL_ROPE": "nvidia-triton"}


@pytest.mark.parametrize("name", ["LIGER_KERNEL_IMPL_ROPE", "LIGER_KERNEL_BACKEND_ROPE", "LIGER_KERNEL_IMPL",
                                  "LIGER_KERNEL_BACKEND"])
def test_a_choice_the_user_made_is_kept_and_named(name):
    env = {name: "nvidia-cutedsl"}
    assert pin_liger_rope(env) == f"nvidia-cutedsl ({name} given)"
    assert env == {name: "nvidia-cutedsl"}


def test_an_empty_variable_is_no_choice():
    env = {"LIGER_KERNEL_IMPL_ROPE": ""}
    pin_liger_rope(env)
    assert env["LIGER_KERNEL_IMPL_ROPE"] == "nvidia-triton"
