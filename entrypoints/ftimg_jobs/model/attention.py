"""Choose the attention implementation: FlashAttention-4 on Hopper/Blackwell, else flash-attn 2, else SDPA.

Pure: the caller probes the machine into an ``AttentionProbe`` (model/load.py) and acts on the answer.
"""

from dataclasses import dataclass
from typing import Optional

FLASH4 = "flash_attention_4"
FLASH = "flash_attention_2"
CHOICES = ("auto", FLASH4, FLASH, "sdpa", "eager")

# The GPUs FlashAttention-4's kernels are tuned for: Hopper (sm90), datacenter Blackwell (sm100, sm103)
# and Jetson Thor (sm110). flash-attn-4 also carries sm80 and sm120 code paths, marked untuned upstream;
# flash-attn 2 or SDPA serve those GPUs.
FLASH4_ARCHITECTURES = {9: "Hopper", 10: "Blackwell", 11: "Blackwell (Jetson Thor)"}


@dataclass(frozen=True)
class AttentionProbe:
    """What the choice depends on, as probed from the installed packages and the GPU."""

    flash2_installed: bool            # the flash-attn (2.x) distribution
    flash4_problem: Optional[str]     # why FlashAttention-4 cannot be used from here, None when it can
    cuda: bool
    capability: Optional[tuple]       # (major, minor) of the GPU
    half_weights: bool                # weights in fp16/bf16: flash-attn 2 needs them
    half_compute: bool                # attention computed in fp16/bf16 (the weights' dtype or autocast)


def flash4_problems(probe: AttentionProbe) -> list:
    problems = [probe.flash4_problem] if probe.flash4_problem else []
    if not probe.cuda:
        problems.append("there is no CUDA GPU")
    elif probe.capability is not None and probe.capability[0] not in FLASH4_ARCHITECTURES:
        problems.append(f"the GPU's compute capability {probe.capability[0]}.{probe.capability[1]} is not "
                        "Hopper (9.x), datacenter Blackwell (10.x) or Jetson Thor (11.x)")
    if not probe.half_compute:
        problems.append("attention would not run in fp16/bf16")
    return problems


def flash2_problems(probe: AttentionProbe) -> list:
    problems = [] if probe.flash2_installed else ["the flash_attn package is not installed in this image"]
    if not probe.cuda:
        problems.append("there is no CUDA GPU")
    elif probe.capability is not None and probe.capability < (8, 0):
        problems.append(f"the GPU's compute capability {probe.capability[0]}.{probe.capability[1]} is below 8.0")
    if not probe.half_weights:
        problems.append("the model is not in fp16/bf16")
    return problems


def choose_attention(requested: str, flash_requested: bool, probe: AttentionProbe) -> tuple:
    """Return ``(implementation, reason)``.

    ``auto`` (and ``--flash_attn``) takes FlashAttention-4 where it runs, else flash-attn 2, else
    SDPA, each fallback with the reason. ``--attn_implementation flash_attention_4`` or
    ``flash_attention_2`` insists on that one (the caller turns a fallback into an error);
    ``sdpa`` or ``eager`` refuses both.
    """
    if requested not in CHOICES:
        raise ValueError(f"attention implementation {requested!r} is not one of {CHOICES}")
    if requested in ("sdpa", "eager"):
        return requested, f"--attn_implementation {requested}"
    flash4, flash2 = flash4_problems(probe), flash2_problems(probe)
    flash4_missing = "FlashAttention-4 unavailable: " + "; ".join(flash4)
    flash2_missing = "flash-attn 2 unavailable: " + "; ".join(flash2)
    if requested == FLASH4:
        return (FLASH4, flash4_usable_reason(probe)) if not flash4 else ("sdpa", flash4_missing)
    if requested == FLASH:
        return (FLASH, "flash-attn 2 is installed and the GPU supports it") if not flash2 else ("sdpa", flash2_missing)
    if not flash4:
        return FLASH4, flash4_usable_reason(probe)
    if not flash2:
        return FLASH, f"flash-attn 2 is installed and the GPU supports it ({flash4_missing})"
    reason = f"{flash4_missing}; {flash2_missing}"
    return "sdpa", reason if flash_requested else f"default ({reason})"


def flash4_usable_reason(probe: AttentionProbe) -> str:
    major, minor = probe.capability
    return (f"FlashAttention-4 (flash-attn-4) imports and the GPU is {FLASH4_ARCHITECTURES[major]} "
            f"(compute capability {major}.{minor})")


def flash4_model_problem(head_dim: int, capability: tuple, sliding_window: bool, attention_dropout: float):
    """Why FlashAttention-4 cannot run this model's attention here (None: it can). Pure.

    Head sizes are the kernels' own limits (flash_attn/cute/interface.py, _validate_head_dims),
    for 16-bit inputs: multiples of 8, up to 256 on Hopper, up to 128 or exactly 256 on Blackwell.
    """
    fits = head_dim % 8 == 0 and (8 <= head_dim <= 256 if capability[0] == 9 else
                                  8 <= head_dim <= 128 or head_dim == 256)
    if not fits:
        return (f"head size {head_dim} is not one its kernels take on compute capability "
                f"{capability[0]}.{capability[1]}")
    if sliding_window:
        return "the model uses sliding-window attention (only full causal attention runs on FlashAttention-4 here)"
    if attention_dropout:
        return f"the model's attention_dropout is {attention_dropout} and FlashAttention-4 has no dropout"
    return None
