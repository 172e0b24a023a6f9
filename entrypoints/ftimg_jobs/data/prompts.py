"""Turn one input record into a prompt, for any of the SFT data formats (torch-free).

Prompts are built the way the SFT jobs build their training text, so an adapter
sees at inference what it saw in training: chat formats (messages, sharegpt,
alpaca) become a list of chat messages for the chat template; `prompt` stays a
raw string that the model continues, as prompt/completion records are trained.
A trailing assistant turn is the reference answer of a training record, not part
of the prompt, so it is dropped: the same file can be used to train and to infer.
"""

from typing import Any, Dict, List, Union

from ftimg_jobs.data.formats import SHAREGPT_ROLES

Prompt = Union[str, List[Dict[str, str]]]

PROMPT_FIELDS = "`messages`, `conversations`, `instruction` (+ optional `input`) or `prompt`"


def _without_answer(messages: List[Dict[str, str]]) -> List[Dict[str, str]]:
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if not messages:
        raise ValueError("the conversation has no turn before the assistant's answer to use as a prompt")
    return messages


def _messages(turns: Any) -> List[Dict[str, str]]:
    if not isinstance(turns, list) or not all(
        isinstance(turn, dict) and isinstance(turn.get("role"), str) and isinstance(turn.get("content"), str)
        for turn in turns
    ):
        raise ValueError("`messages` must be a list of {\"role\": ..., \"content\": ...} objects with string values")
    return _without_answer([{"role": turn["role"], "content": turn["content"]} for turn in turns])


def _sharegpt(turns: Any) -> List[Dict[str, str]]:
    if not isinstance(turns, list) or not all(
        isinstance(turn, dict) and turn.get("from") in SHAREGPT_ROLES and isinstance(turn.get("value"), str)
        for turn in turns
    ):
        raise ValueError(
            "`conversations` must be a list of {\"from\": ..., \"value\": ...} objects, `from` one of "
            + ", ".join(SHAREGPT_ROLES)
        )
    return _without_answer([{"role": SHAREGPT_ROLES[turn["from"]], "content": turn["value"]} for turn in turns])


def _alpaca(fields: Dict[str, Any]) -> List[Dict[str, str]]:
    instruction, extra, system = fields["instruction"], fields.get("input") or "", fields.get("system") or ""
    if not all(isinstance(value, str) for value in (instruction, extra, system)):
        raise ValueError("`instruction`, `input` and `system` must be strings")
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def extract_prompt(fields: Dict[str, Any]) -> Prompt:
    """The prompt of one record; ValueError naming the accepted fields when there is none."""
    if "messages" in fields:
        return _messages(fields["messages"])
    if "conversations" in fields:
        return _sharegpt(fields["conversations"])
    if "instruction" in fields:
        return _alpaca(fields)
    if "prompt" in fields:
        if not isinstance(fields["prompt"], str) or not fields["prompt"]:
            raise ValueError("`prompt` must be a non-empty string")
        return fields["prompt"]
    raise ValueError(f"no prompt field; expected {PROMPT_FIELDS}")
