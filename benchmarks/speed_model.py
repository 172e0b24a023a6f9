"""The benchmark's model, tokenizer and data: a Llama-2-7B-shaped model with random weights, made locally.

Weights' values change neither speed nor memory, so no model hub is needed. The
word-level tokenizer maps "w123" to id 123, which lets the data say exactly how
many tokens each prompt has. Training data follows a simple rule (`chain`) so that
loss curves can be compared.
"""

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

LLAMA2_7B = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
             "intermediate_size": 11008, "vocab_size": 32000, "max_position_embeddings": 4096}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "intermediate_size": 172, "vocab_size": 1000, "max_position_embeddings": 4096}
SPECIAL = ["<unk>", "<s>", "</s>"]
FIRST_WORD_ID = len(SPECIAL)
ALPHABET = 64


def cycle_rule(seed: int) -> np.ndarray:
    """A random permutation of the alphabet that is one cycle through every letter, so that every sequence
    (see `chain`) uses the whole alphabet evenly and one batch's loss is like another's."""
    order = np.random.default_rng(seed).permutation(ALPHABET)
    rule = np.empty(ALPHABET, dtype=np.int64)
    rule[order] = np.roll(order, -1)
    return rule


# The training data's rules (see `chain`): the first for causal-LM data, both for classification.
RULES = [cycle_rule(11), cycle_rule(12)]


def build_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    vocab = {token: index for index, token in enumerate(SPECIAL)}
    vocab.update({f"w{index}": index for index in range(FIRST_WORD_ID, vocab_size)})
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<unk>", padding_side="left")


def make_model(path, tiny: bool) -> None:
    """Random bf16 weights, initialised on the GPU when there is one, saved as safetensors with the tokenizer."""
    shape = TINY if tiny else LLAMA2_7B
    config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(default_dtype)
    model.save_pretrained(path, safe_serialization=True)
    build_tokenizer(shape["vocab_size"]).save_pretrained(path)


def chain(rng, length: int, rule) -> list:
    """Two random letters, then x[t] = rule[x[t-2]], as word ids.

    Data with something to learn: random tokens give a flat loss near ln(vocab), on which two training
    runs always agree. Here the loss falls as a model learns the small alphabet, then the rule (which
    needs attention to the token two back), so comparing two runs' loss curves means something.
    """
    sequence = rng.integers(0, len(rule), size=2).tolist()
    while len(sequence) < length:
        sequence.append(int(rule[sequence[-2]]))
    return [FIRST_WORD_ID + letter for letter in sequence[:length]]


def fixed_length_examples(count: int, length: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [chain(rng, length, RULES[0]) for _ in range(count)]


def variable_length_examples(count: int, shortest: int, longest: int, seed: int = 0) -> list:
    """Lengths drawn uniformly from [shortest, longest] (a documented, seeded distribution)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(shortest, longest + 1, size=count)
    return [chain(rng, int(length), RULES[0]) for length in lengths]


def classification_examples(count: int, shortest: int, longest: int, seed: int = 0) -> list:
    """``(ids, label)`` pairs: the label says which of two rules made the sequence."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(shortest, longest + 1, size=count)
    labels = rng.integers(0, len(RULES), size=count)
    return [(chain(rng, int(length), RULES[label]), int(label)) for length, label in zip(lengths, labels)]


def main() -> int:
    """``python speed_model.py DIR [--tiny]``: make the model in DIR."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("path")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    make_model(args.path, args.tiny)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
