"""Load the tokenizer and model for a training job: dtype, attention, 4-bit quantization, LoRA.

QLoRA is LoRA plus ``q_lora`` (the base is loaded in 4-bit NF4 with double
quantization and bf16/fp16 compute), not a separate code path.
"""

import importlib.util
import logging
import os

import torch
import transformers
from transformers import AutoTokenizer

from ftimg_jobs.attention import FLASH, choose_attention
from ftimg_jobs.errors import JobError
from ftimg_jobs.sft_tokenize import DEFAULT_CHAT_TEMPLATE

log = logging.getLogger("ftimg_jobs")
TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])
# Output heads stay out of LoRA: the LM head is tied to or mirrors the embeddings,
# and a classification head is new and is trained in full (modules_to_save).
HEAD_MODULE_NAMES = {"lm_head", "score", "classifier", "embed_out", "output"}


def dtype_kwargs(dtype) -> dict:
    """transformers 5 renamed ``torch_dtype`` to ``dtype``."""
    return {"dtype": dtype} if TRANSFORMERS_MAJOR >= 5 else {"torch_dtype": dtype}


def compute_dtype(training_args):
    if training_args.bf16:
        return torch.bfloat16
    if training_args.fp16:
        return torch.float16
    return torch.float32


def load_tokenizer(model_args) -> tuple:
    """Left-padding tokenizer with a pad token and a chat template; returns ``(tokenizer, notes)``."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path,
                                                  trust_remote_code=model_args.trust_remote_code)
    except (OSError, ValueError) as error:
        raise JobError(f"cannot load a tokenizer from {model_args.model_name_or_path}: {error}. "
                       "Point --model_name_or_path at a local model directory (mounted into the container)") from None
    notes = {}
    # Decoder-only models are padded on the left so the last position is always a real token.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        notes["pad_token"] = f"tokenizer had no pad token; using {tokenizer.pad_token!r}"
    if tokenizer.eos_token is None:
        raise JobError(f"the tokenizer in {model_args.model_name_or_path} has no EOS token; "
                       "set eos_token in its tokenizer_config.json")
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        notes["chat_template"] = "tokenizer has no chat template; using the ftimg default (<|role|> turns)"
    return tokenizer, notes


def select_attention(model_args, weights_dtype) -> dict:
    """Pick and justify the attention implementation; ``--attn_implementation flash_attention_2`` insists."""
    cuda = torch.cuda.is_available()
    implementation, reason = choose_attention(
        requested=model_args.attn_implementation,
        flash_requested=model_args.flash_attn,
        flash_installed=importlib.util.find_spec("flash_attn") is not None,
        cuda_available=cuda,
        compute_capability=torch.cuda.get_device_capability() if cuda else None,
        half_precision=weights_dtype in (torch.float16, torch.bfloat16),
    )
    if model_args.attn_implementation == FLASH and implementation != FLASH:
        raise JobError(f"--attn_implementation {FLASH}: {reason}. Use --attn_implementation auto or sdpa")
    if model_args.flash_attn and implementation != FLASH:
        log.warning("--flash_attn: %s; using %s instead", reason, implementation)
    return {"implementation": implementation, "reason": reason}


def local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def load_model(model_class, model_args, training_args, **config_kwargs) -> tuple:
    """Load the base model; returns ``(model, attention info)``."""
    half = compute_dtype(training_args)
    # Full fine-tuning keeps fp32 master weights (autocast does the half-precision math);
    # adapters train on a frozen half-precision (or 4-bit) base.
    weights_dtype = half if model_args.use_lora else torch.float32
    attention = select_attention(model_args, weights_dtype)
    kwargs = dict(config_kwargs, trust_remote_code=model_args.trust_remote_code, **dtype_kwargs(weights_dtype))
    if model_args.q_lora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=half)
        kwargs["device_map"] = {"": local_device_index()}
    model = from_pretrained_with_attention(model_class, model_args.model_name_or_path, attention, kwargs)
    if training_args.gradient_checkpointing:
        model.config.use_cache = False
    return model, attention


def from_pretrained_with_attention(model_class, path, attention, kwargs):
    """Load with the chosen attention; a model without SDPA support falls back to eager."""
    try:
        return model_class.from_pretrained(path, attn_implementation=attention["implementation"], **kwargs)
    except ValueError as error:
        if attention["implementation"] != "sdpa" or "sdpa" not in str(error).lower():
            raise JobError(f"cannot load the model from {path}: {error}") from None
        attention.update(implementation="eager", reason=f"the model does not support SDPA: {error}")
        log.warning("attention: %s; using eager", attention["reason"])
        return model_class.from_pretrained(path, attn_implementation="eager", **kwargs)
    except ImportError as error:
        raise JobError(f"cannot load the model from {path}: {error}") from None
    except OSError as error:
        raise JobError(f"cannot load the model from {path}: {error}. Point --model_name_or_path at a "
                       "local model directory (mounted into the container)") from None


def linear_module_names(model) -> list:
    """Leaf names of every linear layer (4-bit layers subclass nn.Linear) except output heads."""
    names = set()
    for qualified_name, module in model.named_modules():
        leaf = qualified_name.rsplit(".", 1)[-1]
        if isinstance(module, torch.nn.Linear) and leaf not in HEAD_MODULE_NAMES:
            names.add(leaf)
    return sorted(names)


def apply_lora(model, model_args, training_args, task_type: str):
    """Wrap the model with LoRA adapters; the frozen base keeps its dtype.

    QLoRA skips peft's prepare_model_for_kbit_training: it casts every frozen
    half-precision weight (embeddings, norms, LM head) to fp32, which turns the
    residual stream fp32 and costs memory and time (docs/performance.md).
    Checkpointing is the Trainer's or speed.py's business.
    """
    from peft import LoraConfig, get_peft_model

    targets = model_args.lora_target_modules or linear_module_names(model)
    config = LoraConfig(r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
                        lora_dropout=model_args.lora_dropout, target_modules=targets,
                        bias="none", task_type=task_type)
    try:
        model = get_peft_model(model, config)
    except ValueError as error:
        raise JobError(f"--lora_target_modules {' '.join(targets)}: {error}") from None
    # Trainable weights in fp32: fp16 AMP cannot unscale fp16 gradients, and the
    # optimizer state is more accurate for it.
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    log.info("LoRA r=%d alpha=%d on %s", model_args.lora_r, model_args.lora_alpha, ", ".join(targets))
    return model


def count_parameters(model) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total}
