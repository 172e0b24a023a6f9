"""When a generated sequence is finished, and what of it is kept (torch-free).

A sequence ends at the first of: an end-of-sequence token (kept, counted, and hidden
from the text by skip_special_tokens), a stop string (the text is cut before it, as
vLLM and the OpenAI API do; the tokens up to the one that completed it are counted),
or the token budget. The engine checks rows every few steps, so a row may have run
past its end; everything after the end is dropped here.
"""

from dataclasses import dataclass
from typing import Callable, Collection, List, Optional, Sequence

Decode = Callable[[Sequence[int]], str]


@dataclass(frozen=True)
class Ending:
    kept_tokens: int  # how many generated tokens belong to the output
    reason: str  # "eos", "stop" or "length"
    text_end: Optional[int] = None  # for "stop": where the stop string starts in the decoded text


def first_stop(text: str, stops: Sequence[str]) -> Optional[int]:
    """Index in `text` where the earliest stop string starts, or None."""
    found = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(found) if found else None


def stop_string_ending(tokens: Sequence[int], checked: int, stops: Sequence[str], decode: Decode) -> Optional[Ending]:
    """The first stop string completed by tokens[checked:], given none was in tokens[:checked]."""
    if not stops or first_stop(decode(tokens), stops) is None:
        return None
    for count in range(checked + 1, len(tokens) + 1):
        text = decode(tokens[:count])
        index = first_stop(text, stops)
        if index is not None:
            return Ending(count, "stop", index)
    return None  # unreachable: the full text holds a stop string


def find_ending(tokens: List[int], checked: int, eos_ids: Collection[int], max_new_tokens: int,
                stops: Sequence[str], decode: Decode) -> Optional[Ending]:
    """How `tokens` (all generated so far, of which the first `checked` were looked at before) end, if they do."""
    eos_at = next((index for index in range(checked, min(len(tokens), max_new_tokens)) if tokens[index] in eos_ids),
                  None)
    within = tokens[:max_new_tokens if eos_at is None else eos_at + 1]
    stop = stop_string_ending(within, checked, stops, decode)
    if stop is not None:
        return stop
    if eos_at is not None:
        return Ending(eos_at + 1, "eos")
    if len(tokens) >= max_new_tokens:
        return Ending(max_new_tokens, "length")
    return None
