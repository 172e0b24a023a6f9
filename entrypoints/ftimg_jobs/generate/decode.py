"""Tokenize prompts and generate one left-padded batch; the torch half of the `infer` job.

Written against both transformers 4.4x and 5.x: only stable entry points are used
(`apply_chat_template`, `generate(input_ids, attention_mask, generation_config)`).
"""

import copy
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch

from ftimg_jobs.data.formats import Prompt
from ftimg_jobs.data.tokenization import render


@dataclass(frozen=True)
class Generation:
    text: str
    num_generated_tokens: int
    finish_reason: str  # "eos" or "length"


def render_prompt(tokenizer, prompt: Prompt) -> str:
    """The exact text the model continues.

    A raw `prompt` string is continued as is, the way prompt/completion records are trained;
    chat messages go through the chat template, ending with the assistant's cue.
    """
    return prompt if isinstance(prompt, str) else render(tokenizer, prompt, add_generation_prompt=True)


def prompt_token_ids(tokenizer, prompt: Prompt, text: str) -> List[int]:
    # The chat template writes its own BOS; raw prompts get it from the tokenizer, as in training.
    return list(tokenizer(text, add_special_tokens=isinstance(prompt, str))["input_ids"])


def generation_config(model, tokenizer, max_new_tokens: int, do_sample: bool, num_beams: int,
                      temperature: Optional[float], top_p: Optional[float], top_k: Optional[int]):
    """The model's own generation config with the user's settings on top.

    Sampling values not given keep the model's recommended ones; greedy and beam search
    clear them, which also silences transformers' "temperature is set but do_sample=False".
    """
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    config.do_sample = do_sample
    config.num_beams = num_beams
    config.num_return_sequences = 1
    config.pad_token_id = tokenizer.pad_token_id
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    if do_sample:
        for name, value in (("temperature", temperature), ("top_p", top_p), ("top_k", top_k)):
            if value is not None:
                setattr(config, name, value)
    else:
        config.temperature, config.top_p, config.top_k = None, None, None
    return config


def eos_token_ids(config) -> set:
    eos = config.eos_token_id
    return set(eos) if isinstance(eos, (list, tuple)) else {eos}


@torch.inference_mode()
def generate_batch(model, tokenizer, config, token_ids: Sequence[List[int]], device) -> List[Generation]:
    """Generate for a batch of tokenized prompts; one Generation per prompt, in order."""
    width = max(len(ids) for ids in token_ids)
    input_ids = torch.tensor([[config.pad_token_id] * (width - len(ids)) + ids for ids in token_ids], device=device)
    attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in token_ids], device=device)
    output = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    new_tokens = output[:, width:].tolist()
    stops = eos_token_ids(config)
    generations = []
    for row in new_tokens:
        # After EOS a finished row is padded to the batch's length; count up to and including EOS.
        end = next((index for index, token in enumerate(row) if token in stops), None)
        kept = row if end is None else row[: end + 1]
        generations.append(Generation(
            text=tokenizer.decode(kept, skip_special_tokens=True),
            num_generated_tokens=len(kept),
            finish_reason="length" if end is None else "eos",
        ))
    return generations
