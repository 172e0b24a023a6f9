"""Which model a job loads and how it is adapted: shared by every job."""

from dataclasses import dataclass, field
from typing import List, Optional

from ftimg_jobs.model.attention import CHOICES as ATTENTION_CHOICES


@dataclass
class ModelArguments:
    """The base model and its attention kernel."""

    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "Local model directory. Default: the adapter's base model when an adapter is given, "
                "else the embedded tiny model (env FTIMG_DEFAULT_MODEL)."})
    flash_attn: bool = field(default=False, metadata={
        "help": "Ask for flash attention (FlashAttention-4, else flash-attn 2); falls back to SDPA with a warning "
                "when neither can be used."})
    attn_implementation: str = field(default="auto", metadata={
        "help": "auto (FlashAttention-4 on Hopper/Blackwell if installed, else flash-attn 2 if usable, else SDPA), "
                "flash_attention_4 or flash_attention_2 (required), sdpa or eager.",
        "choices": list(ATTENTION_CHOICES)})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the model's own Python code."})


@dataclass
class LoraArguments:
    """How a training job adapts the model: LoRA adapters (on a 4-bit base for QLoRA) or every weight."""

    use_lora: bool = field(default=True, metadata={"help": "Train LoRA adapters instead of all weights."})
    q_lora: bool = field(default=False, metadata={
        "help": "Quantize the frozen base to 4-bit NF4 (double quant) under the LoRA adapters; needs a CUDA GPU."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={
        "help": "Dropout on the LoRA input. Default 0: PEFT then applies none and keeps no dropped copy of each "
                "adapted linear's input, so fewer layers need checkpointing (docs/performance.md); "
                "pass e.g. --lora_dropout 0.05 to train with dropout."})
    lora_target_modules: Optional[List[str]] = field(default=None, metadata={
        "help": "Module names to adapt (e.g. q_proj v_proj); default: every linear layer except the output head."})


@dataclass
class AdapterArguments:
    """A trained LoRA adapter to apply (infer) or fold into its base (merge)."""

    adapter_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "LoRA adapter directory, as saved by lora-sft/qlora-sft (its output_dir or a checkpoint-N)."})
