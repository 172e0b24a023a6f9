"""Tokenize prompts, resolve the generation settings, and generate one left-padded batch eagerly.

The eager engine of the `infer` job (`--engine eager`, and wherever the static engine
cannot run: CPU, transformers 4, beam search); static_engine.py is the fast one.

Written against both transformers 4.4x and 5.x: only stable entry points are used
(`apply_chat_template`, `generate(input_ids, attention_mask, generation_config)`).
"""

import copy
from dataclasses import dataclass
from typing import List, Sequence

import torch

from ftimg_jobs.data.formats import Prompt
from ftimg_jobs.data.tokenization import render
from ftimg_jobs.generate.sampling import SamplingSettings
from ftimg_jobs.generate.stops import Ending, find_ending


@dataclass(frozen=True)
class Generation:
    text: str
    num_generated_tokens: int
    finish_reason: str  # "eos", "stop" or "length"


def render_prompt(tokenizer, prompt: Prompt) -> str:
    """The exact text the model continues.

    A raw `prompt` string is continued as is, the way prompt/completion records are trained;
    chat messages go through the chat template, ending with the assistant's cue.
    """
    return prompt if isinstance(prompt, str) else render(tokenizer, prompt, add_generation_prompt=True)


def prompt_token_ids(tokenizer, prompt: Prompt, text: str) -> List[int]:
    # The chat template writes its own BOS; raw prompts get it from the tokenizer, as in training.
    return list(tokenizer(text, add_special_tokens=isinstance(prompt, str))["input_ids"])


def generation_config(model, tokenizer, args):
    """The model's own generation config with the user's settings (GenerationArguments) on top.

    Sampling values not given keep the model's recommended ones; greedy and beam search
    clear them, which also silences transformers' "temperature is set but do_sample=False".
    """
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens = args.max_new_tokens
    config.max_length = None
    config.do_sample = args.do_sample
    config.num_beams = args.num_beams
    config.num_return_sequences = 1
    config.pad_token_id = tokenizer.pad_token_id
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    if args.do_sample:
        for name in ("temperature", "top_p", "top_k"):
            if getattr(args, name) is not None:
                setattr(config, name, getattr(args, name))
    else:
        config.temperature, config.top_p, config.top_k = None, None, None
    if args.repetition_penalty is not None:
        config.repetition_penalty = args.repetition_penalty
    if args.stop:
        config.stop_strings = list(args.stop)  # ends a row early; the text is cut by stops.find_ending
    if args.ignore_eos:
        # generate() fills unset fields from the model's own config, so EOS is cleared there too.
        config.eos_token_id = None
        model.generation_config.eos_token_id = None
    return config


def sampling_settings(config) -> SamplingSettings:
    """The static engine's view of a resolved generation config (transformers' defaults where unset)."""
    if not config.do_sample:
        return SamplingSettings(repetition_penalty=config.repetition_penalty or 1.0)
    return SamplingSettings(do_sample=True, temperature=config.temperature or 1.0,
                            top_k=50 if config.top_k is None else config.top_k, top_p=config.top_p,
                            repetition_penalty=config.repetition_penalty or 1.0)


def eos_token_ids(config) -> set:
    eos = config.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, (list, tuple)) else {eos}


def text_decoder(tokenizer):
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=True)


def to_generation(decode, tokens: Sequence[int], ending: Ending) -> Generation:
    """The record fields of a finished sequence: kept tokens, text (cut before a stop string), reason."""
    kept = list(tokens[:ending.kept_tokens])
    text = decode(kept)
    return Generation(text=text if ending.text_end is None else text[:ending.text_end],
                      num_generated_tokens=len(kept), finish_reason=ending.reason)


@torch.inference_mode()
def generate_batch(model, tokenizer, config, token_ids: Sequence[List[int]], device, stops: Sequence[str],
                   ignore_eos: bool) -> List[Generation]:
    """Generate for a batch of tokenized prompts with model.generate; one Generation per prompt, in order."""
    width = max(len(ids) for ids in token_ids)
    input_ids = torch.tensor([[config.pad_token_id] * (width - len(ids)) + ids for ids in token_ids], device=device)
    attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in token_ids], device=device)
    extra = {"tokenizer": tokenizer} if stops else {}  # generate() needs it to match stop strings
    output = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config, **extra)
    stop_ids = set() if ignore_eos else eos_token_ids(config)
    decode = text_decoder(tokenizer)
    generations = []
    for row in output[:, width:].tolist():
        # A finished row is padded to the batch's length; its ending says where it really stopped.
        ending = find_ending(row, 0, stop_ids, config.max_new_tokens, stops, decode) or Ending(len(row), "length")
        generations.append(to_generation(decode, row, ending))
    return generations
