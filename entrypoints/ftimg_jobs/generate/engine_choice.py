"""Which engine decodes: the static (CUDA-graph) engine where it can run, else model.generate.

Kept apart from static_engine.py so that stacks without transformers 5's cache classes
(the image's default profile) can ask the question without importing the engine.
"""

from typing import Optional

import torch

# Decoder families whose attention takes a 4D mask, explicit position ids and a Cache's
# update(key, value, layer_idx) in transformers 5 (checked against their modeling files).
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "granite", "olmo2"})


def uses_sliding_window(config) -> bool:
    """True when some layers attend within a window (the engine's masks are full causal)."""
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        return any(kind != "full_attention" for kind in layer_types)
    return getattr(config, "sliding_window", None) is not None and getattr(config, "use_sliding_window", True)


def static_engine_problem(model, device: torch.device, num_beams: int) -> Optional[str]:
    """Why the static engine cannot run this model here, or None when it can."""
    import transformers

    if device.type != "cuda":
        return "it needs a CUDA GPU (CPU decoding is not launch-bound, the eager engine is as fast there)"
    if int(transformers.__version__.split(".")[0]) < 5:
        return f"it needs transformers 5 (this stack has {transformers.__version__})"
    if num_beams > 1:
        return "beam search (--num_beams > 1) runs on the eager engine"
    model_type = getattr(model.config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {model_type!r} is not one it was checked with ({', '.join(sorted(SUPPORTED_MODEL_TYPES))})"
    if uses_sliding_window(model.config):
        return "the model uses sliding-window attention, which its 4D masks do not express"
    return None
