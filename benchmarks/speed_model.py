"""The benchmark's model, tokenizer and data: a Llama-2-7B-shaped model with random weights, made locally.

Weights' values change neither speed nor memory, so no model hub is needed. The
word-level tokenizer maps "w123" to id 123, which lets the data say exactly how
many tokens each prompt has.
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


def random_ids(rng, length: int, vocab_size: int) -> list:
    return rng.integers(FIRST_WORD_ID, vocab_size, size=length).tolist()


def fixed_length_examples(count: int, length: int, vocab_size: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [random_ids(rng, length, vocab_size) for _ in range(count)]


def variable_length_examples(count: int, shortest: int, longest: int, vocab_size: int, seed: int = 0) -> list:
    """Lengths drawn uniformly from [shortest, longest] (a documented, seeded distribution)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(shortest, longest + 1, size=count)
    return [random_ids(rng, int(length), vocab_size) for length in lengths]


def prompt_texts(count: int, shortest: int, longest: int, vocab_size: int, seed: int = 1) -> list:
    """Prompts of mixed length as word strings the benchmark tokenizer turns into exactly those ids."""
    return [" ".join(f"w{token}" for token in ids)
            for ids in variable_length_examples(count, shortest, longest, vocab_size, seed)]
