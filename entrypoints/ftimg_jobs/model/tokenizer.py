"""Load a tokenizer the way every job needs it: left padding, a pad token, an EOS token and a chat template."""

from transformers import AutoTokenizer

from ftimg_jobs.errors import JobError
from ftimg_jobs.model.adapter import has_tokenizer
from ftimg_jobs.model.chat_template import DEFAULT_CHAT_TEMPLATE


def load_tokenizer(path: str, trust_remote_code: bool = False) -> tuple:
    """Returns ``(tokenizer, notes)``; notes say what was filled in (pad token, chat template)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise JobError(f"cannot load a tokenizer from {path}: {error}. "
                       "Point --model_name_or_path at a local model directory (mounted into the container)") from None
    notes = {}
    # Decoder-only models are padded on the left so the last position is always a real token.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        notes["pad_token"] = f"tokenizer had no pad token; using {tokenizer.pad_token!r}"
    if tokenizer.eos_token is None:
        raise JobError(f"the tokenizer in {path} has no EOS token; set eos_token in its tokenizer_config.json")
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        notes["chat_template"] = "tokenizer has no chat template; using the ftimg default (<|role|> turns)"
    return tokenizer, notes


def tokenizer_source(model_path: str, adapter_path) -> str:
    """The adapter's tokenizer when training saved one (it may add tokens or a template), else the model's."""
    return adapter_path if adapter_path and has_tokenizer(adapter_path) else model_path
