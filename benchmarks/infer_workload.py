"""The infer benchmark's workload: seeded prompts, the 7B-shaped model, and a small trained model for agreement.

Prompt tokens are word tokens of benchmarks/speed_model.py's tokenizer ("w123" is id 123),
so a JSONL prompt file says exactly which ids the job will see: BOS + the listed ids.

Agreement between two greedy decoders is only meaningful where the next token is not a
near tie: a model with random weights has nearly flat logits (the top two of 32,000
differ by less than bf16 rounding), so any reordering of floating-point sums flips its
choices and agreement measures noise (measured: a median top-2 gap of 0.19 logits on
the random 7B model). `train_copy_model` trains a small Llama on sequences where each
token is a fixed permutation of the token two positions back (`chain`): the next token
depends on the KV cache (attention to an earlier position), and once learned, the top
token leads by many logits, so two correct decoders must agree on nearly every token,
and a decoder with a wrong cache, mask or position cannot. The benchmark reports the
margin it measured. (A first try, copying a random repeated pattern, had not begun to
learn after 400 steps: induction heads form late.)
"""

import json
from pathlib import Path
from typing import Dict, List

import numpy as np

from speed_model import FIRST_WORD_ID

PROMPTS = 1024
SHORTEST, LONGEST = 16, 512
NEW_TOKENS = 128
BOS = 1

# The copy model's task: a fixed random permutation of a small alphabet, applied to the token two back.
ALPHABET = 512
RULE = np.random.default_rng(1234).permutation(ALPHABET)
COPY_MODEL = {"hidden_size": 512, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8,
              "intermediate_size": 1408, "vocab_size": 32000, "max_position_embeddings": 4096}


def random_prompts(count: int = PROMPTS, shortest: int = SHORTEST, longest: int = LONGEST, vocab: int = 32000,
                   seed: int = 0) -> Dict[int, List[int]]:
    """id -> word-token ids (without BOS), lengths uniform in [shortest, longest]."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(shortest, longest + 1, size=count)
    return {index: rng.integers(FIRST_WORD_ID, vocab, size=int(length)).tolist()
            for index, length in enumerate(lengths)}


def chain_prompts(count: int = PROMPTS, shortest: int = SHORTEST, longest: int = LONGEST,
                  seed: int = 1) -> Dict[int, List[int]]:
    """id -> a sequence that follows the copy model's rule, lengths uniform in [shortest, longest]."""
    rng = np.random.default_rng(seed)
    return {index: chain(rng, int(rng.integers(shortest, longest + 1))) for index in range(count)}


def chain(rng, length: int) -> List[int]:
    """Two random tokens, then x[t] = RULE[x[t-2]]: predicting a token needs the one two back (attention)."""
    sequence = rng.integers(0, ALPHABET, size=2).tolist()
    while len(sequence) < length:
        sequence.append(int(RULE[sequence[-2]]))
    return [FIRST_WORD_ID + token for token in sequence[:length]]


def write_jsonl(path: Path, prompts: Dict[int, List[int]]) -> None:
    path.write_text("".join(json.dumps({"id": index, "prompt": " ".join(f"w{t}" for t in ids)}) + "\n"
                            for index, ids in prompts.items()))


def with_bos(prompts: Dict[int, List[int]]) -> Dict[int, List[int]]:
    """The ids the job's tokenizer makes of each prompt line (it prepends BOS)."""
    return {index: [BOS] + ids for index, ids in prompts.items()}


def train_copy_model(path: Path, steps: int = 300, batch: int = 32, length: int = 640, seed: int = 0,
                     device: str = "cuda", shape: dict = COPY_MODEL) -> dict:
    """Train a small Llama on `chain` sequences; save it (bf16) with the word tokenizer. Returns stats."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from speed_model import build_tokenizer

    torch.manual_seed(seed)
    config = LlamaConfig(**shape, bos_token_id=BOS, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    generator = np.random.default_rng(seed + 1)
    losses = []
    for step in range(steps):
        ids = torch.tensor([[BOS] + chain(generator, length - 1) for _ in range(batch)], device=device)
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * min(1.0, (step + 1) / 50)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model = model.to(torch.bfloat16).eval()
    model.save_pretrained(path, safe_serialization=True)
    build_tokenizer(config.vocab_size).save_pretrained(path)
    return {"steps": steps, "first_loss": round(losses[0], 3), "last_loss": round(float(np.mean(losses[-20:])), 4),
            "task": "x[t] = permutation(x[t-2]) over 512 tokens"}


def top2_margin(model, prompts: Dict[int, List[int]], count: int = 64) -> float:
    """Median gap between the two largest next-token logits over the last prompt position (bf16 model)."""
    import torch

    gaps = []
    with torch.inference_mode():
        for ids in list(prompts.values())[:count]:
            logits = model(input_ids=torch.tensor([[BOS] + ids], device=model.device)).logits[0, -1].float()
            top = torch.topk(logits, 2).values
            gaps.append((top[0] - top[1]).item())
    return float(np.median(gaps))
