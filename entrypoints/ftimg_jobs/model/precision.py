"""The one precision policy: which floating-point type a job computes and keeps its weights in.

fp32 on the CPU (half precision is slow there), bf16 on GPUs that have it, else fp16.
Training says it with ``--bf16/--fp16`` (TrainingArguments' flags), inference and
merge with ``--torch_dtype``; both ask this module. Dtypes are named by string here
so the rules stay torch-free and unit-tested; ``torch_dtype(name)`` converts.
"""

from ftimg_jobs.args.config import flag_value, is_true
from ftimg_jobs.errors import JobError

DTYPE_NAMES = ("bfloat16", "float16", "float32")
AUTO = "auto"


def automatic_dtype(cuda_available: bool, bf16_supported: bool) -> str:
    if not cuda_available:
        return "float32"
    return "bfloat16" if bf16_supported else "float16"


def requested_dtype(requested: str, cuda_available: bool, bf16_supported: bool, flag: str = "--torch_dtype") -> str:
    """``auto`` or a dtype name → a dtype name; a GPU without bf16 refuses it with the fix."""
    if requested == AUTO:
        return automatic_dtype(cuda_available, bf16_supported)
    if requested not in DTYPE_NAMES:
        raise JobError(f"{flag} {requested}: use {AUTO}, {', '.join(DTYPE_NAMES)}")
    if requested == "bfloat16" and cuda_available and not bf16_supported:
        raise JobError(f"{flag} bfloat16 but this GPU has no bf16 support (e.g. V100, T4): use float16")
    return requested


def training_precision_tokens(tokens: list, cuda_available: bool, bf16_supported: bool) -> tuple:
    """Complete a training argv's ``--bf16/--fp16`` by the policy.

    Returns ``(tokens, note)``; ``note`` explains a user request that was overridden.
    """
    bf16, fp16 = flag_value(tokens, "bf16"), flag_value(tokens, "fp16")
    if not cuda_available:
        note = ("no CUDA GPU: training in fp32, ignoring --bf16/--fp16"
                if is_true(bf16) or is_true(fp16) else None)
        return tokens + ["--bf16", "False", "--fp16", "False"], note
    if is_true(bf16) and not bf16_supported:
        raise JobError("--bf16 True but this GPU has no bf16 support (e.g. V100, T4): use --fp16 True")
    if bf16 is None and fp16 is None:
        half = automatic_dtype(cuda_available, bf16_supported)
        return tokens + (["--bf16", "True"] if half == "bfloat16" else ["--fp16", "True"]), None
    return tokens, None


def training_compute_dtype(training_args) -> str:
    """The dtype of a training run's half-precision math (fp32 when neither flag is set)."""
    if training_args.bf16:
        return "bfloat16"
    if training_args.fp16:
        return "float16"
    return "float32"


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)
