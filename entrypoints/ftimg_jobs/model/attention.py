"""Choose the attention implementation: flash-attn 2 when installed and usable, else SDPA, else eager."""

FLASH = "flash_attention_2"
CHOICES = ("auto", FLASH, "sdpa", "eager")


def choose_attention(requested: str, flash_requested: bool, flash_installed: bool,
                     cuda_available: bool, compute_capability, half_precision: bool) -> tuple:
    """Return ``(implementation, reason)``. Pure; the caller probes the machine.

    flash-attn 2 needs the package, an Ampere-or-newer GPU (compute capability 8.0+)
    and fp16/bf16 weights. ``--flash_attn`` asks for it and falls back with a
    reason when it cannot be used; ``--attn_implementation flash_attention_2``
    insists (the caller turns the reason into an error).
    """
    problems = []
    if not flash_installed:
        problems.append("the flash_attn package is not installed in this image")
    if not cuda_available:
        problems.append("there is no CUDA GPU")
    elif compute_capability is not None and compute_capability < (8, 0):
        problems.append(f"the GPU's compute capability {compute_capability[0]}.{compute_capability[1]} is below 8.0")
    if not half_precision:
        problems.append("the model is not in fp16/bf16")
    flash_usable = not problems
    if requested not in ("auto", FLASH):
        return requested, f"--attn_implementation {requested}"
    if flash_usable:
        return FLASH, "flash-attn 2 is installed and the GPU supports it"
    reason = "flash-attn 2 unavailable: " + "; ".join(problems)
    if requested == FLASH or flash_requested:
        return "sdpa", reason
    return "sdpa", "default (" + reason + ")"
