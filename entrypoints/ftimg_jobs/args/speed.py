"""How fast versus how lean a training step is (the levers themselves are in train/)."""

from dataclasses import dataclass, field
from typing import Optional

# --gradient_checkpointing_layers: let the memory budget decide.
AUTO_LAYERS = -1


@dataclass
class SpeedArguments:
    """How fast versus how lean a training step is."""

    padding_free: bool = field(default=True, metadata={
        "help": "Lay each batch's examples end to end in one row with restarting position ids: no padding is "
                "computed and attention stays within each example (needs flash-attn 2 or transformers 4.53+; "
                "causal-LM jobs only)."})
    liger_kernels: bool = field(default=True, metadata={
        "help": "Fused Triton kernels (RMSNorm, SwiGLU, RoPE, linear + cross-entropy) when liger-kernel is installed."})
    gradient_checkpointing_layers: int = field(default=AUTO_LAYERS, metadata={
        "help": "Decoder layers to checkpoint: -1 picks the fewest that fit --gpu_memory_budget_gib; "
                "--gradient_checkpointing True checkpoints them all."})
    gpu_memory_budget_gib: float = field(default=0.0, metadata={
        "help": "GPU memory the automatic checkpointing choice may plan for (0: 90%% of the GPU's memory)."})
    compile_layers: Optional[bool] = field(default=None, metadata={
        "help": "Compile each decoder layer with torch.compile (one graph serves every layer; GPU, torch 2.5+): "
                "norms, RoPE, SwiGLU and the LoRA arithmetic fused, far fewer kernel launches; attention stays "
                "out of the graph and the first steps pay the compile. Unset: on for sft (LoRA, QLoRA, full) of Llama "
                "models, where it was measured (docs/performance.md); True for other jobs and models, False to turn "
                "it off."})
    eight_bit_optimizer: Optional[bool] = field(default=None, metadata={
        "help": "Full fine-tuning on a GPU with --optim left at its default: True uses bitsandbytes' paged 8-bit "
                "AdamW (a quarter of AdamW's state memory), False keeps fp32 AdamW state. Unset: fused fp32 AdamW "
                "where it needs no more checkpointed layers than 8-bit AdamW to fit the memory budget "
                "(--gpu_memory_budget_gib), 8-bit AdamW where it would; a resumed run keeps its checkpoint's kind."})
    freeze_gc: bool = field(default=True, metadata={
        "help": "After the first optimizer step, exempt every object that exists then (imports, the model, compiled "
                "graphs) from Python's garbage collector (gc.freeze): a full collection otherwise walks half a "
                "million objects, a quarter of a second in which the host launches no kernel. New garbage is "
                "collected as before."})
