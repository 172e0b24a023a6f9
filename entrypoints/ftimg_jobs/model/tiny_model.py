"""Generate the embedded tiny Llama-shaped model and its byte-level tokenizer, offline and deterministically.

    python -m ftimg_jobs.model.tiny_model /opt/ftimg/models/tiny-llama

Runs at image build time; two runs give byte-identical files (fixed seed, no
model hub, no timestamps). The weights are random: the model exists so every
job runs end to end with no arguments, and tests need no downloads.
"""

import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from ftimg_jobs.model.chat_template import DEFAULT_CHAT_TEMPLATE

SEED = 0
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2}
MAX_POSITIONS = 2048


def byte_to_unicode() -> list:
    """GPT-2's printable stand-in character for each byte value 0..255, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    characters, extra = [], 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + extra))
            extra += 1
    return characters


def build_tokenizer() -> PreTrainedTokenizerFast:
    """256 byte tokens (id = byte value) and no merges, then BOS/EOS/PAD: any UTF-8 text, Chinese included."""
    vocab = {character: byte for byte, character in enumerate(byte_to_unicode())}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([BOS, EOS, PAD])
    bos_id = backend.token_to_id(BOS)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                        padding_side="left", model_max_length=MAX_POSITIONS)
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=MAX_POSITIONS,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False, **SHAPE)
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config)


def generate(output_dir) -> Path:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    build_model(tokenizer).save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m ftimg_jobs.model.tiny_model OUTPUT_DIR", file=sys.stderr)
        return 2
    print(f"tiny model written to {generate(argv[0])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
