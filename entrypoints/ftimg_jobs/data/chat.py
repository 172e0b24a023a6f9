"""Conversation turns of sharegpt and OpenAI ``messages`` records, in the one common shape (torch-free).

A turn becomes ``{"role": system|user|assistant|tool, "content": str}``, plus
``tool_calls`` (OpenAI shape, arguments as a dict) on an assistant turn that calls
tools. Content may be a string or a list of typed parts: ``text`` parts
(``text`` or ``value`` key) are joined; ``reasoning``/``thinking`` parts become
``<think>…</think>`` before the text, as reasoning models write them. A turn's
``weight`` (0 or 1) says whether that assistant turn is trained.
"""

import json
from dataclasses import dataclass

from ftimg_jobs.errors import JobError

TEXT_PART_TYPES = ("text",)
REASONING_PART_TYPES = ("reasoning", "thinking")


@dataclass(frozen=True)
class ChatShape:
    """Where a chat format keeps its turns, and what its speaker names mean."""

    turns_key: str
    role_key: str
    content_key: str
    roles: dict  # speaker name in the data → common role, or "function_call" / "observation"


SHAREGPT = ChatShape("conversations", "from", "value", {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
    "system": "system", "function_call": "function_call", "observation": "observation", "tool": "observation"})
MESSAGES = ChatShape("messages", "role", "content", {
    "system": "system", "user": "user", "assistant": "assistant", "tool": "observation",
    "function": "observation", "ipython": "observation"})

# LLaMA-Factory dataset_info.json ``tags`` name the speakers of a dataset.
TAG_ROLES = {"user_tag": "user", "assistant_tag": "assistant", "system_tag": "system",
             "observation_tag": "observation", "function_tag": "function_call"}


def shape_with_tags(shape: ChatShape, tags: dict, turns_key: str) -> ChatShape:
    roles = dict(shape.roles)
    roles.update({tags[tag]: role for tag, role in TAG_ROLES.items() if tags.get(tag)})
    return ChatShape(turns_key, tags.get("role_tag") or shape.role_key, tags.get("content_tag") or shape.content_key,
                     roles)


def content_text(value, where: str) -> str:
    """A turn's content as text: a string, or a list of typed parts."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise JobError(f"{where} must be a string or a list of typed parts "
                       f"([{{\"type\": \"text\", \"text\": ...}}]), got {type(value).__name__}")
    reasoning, text = [], []
    for index, part in enumerate(value, start=1):
        kind = part.get("type") if isinstance(part, dict) else None
        body = part.get("text", part.get("value")) if isinstance(part, dict) else None
        if kind not in TEXT_PART_TYPES + REASONING_PART_TYPES or not isinstance(body, str):
            raise JobError(f"{where}[{index}] must be {{\"type\": \"text\" or \"reasoning\", \"text\" or \"value\": "
                           f"string}}; got {json.dumps(part, ensure_ascii=False)[:80]} "
                           "(only text and reasoning parts can be trained here)")
        (reasoning if kind in REASONING_PART_TYPES else text).append(body)
    thought = "".join(f"<think>\n{body}\n</think>\n\n" for body in reasoning)
    return thought + "".join(text)


def tool_arguments(value, where: str) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as error:
            raise JobError(f"{where}.arguments is not valid JSON ({error.msg}); give a JSON object") from None
    if not isinstance(value, dict):
        raise JobError(f"{where}.arguments must be a JSON object, got {type(value).__name__}")
    return value


def tool_calls(value, where: str) -> list:
    """OpenAI ``tool_calls`` or sharegpt ``function_call`` values → ``[{"type", "function": {name, arguments}}]``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise JobError(f"{where} must hold a JSON tool call {{\"name\", \"arguments\"}} ({error.msg})") from None
    calls = value if isinstance(value, list) else [value]
    normalised = []
    for index, call in enumerate(calls, start=1):
        function = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise JobError(f"{where}[{index}] must be a tool call {{\"name\": string, \"arguments\": object}}")
        entry = {"type": "function", "function": {"name": function["name"],
                                                   "arguments": tool_arguments(function.get("arguments", {}),
                                                                               f"{where}[{index}]")}}
        if isinstance(call.get("id"), str):
            entry["id"] = call["id"]
        normalised.append(entry)
    return normalised


def tool_list(value, where: str) -> tuple:
    """A record's ``tools``: a list (or a JSON string of one) of function schemas, in OpenAI's shape."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise JobError(f"{where} must be a JSON list of tool schemas ({error.msg})") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise JobError(f"{where} must be a list of tool schemas ({{\"name\", \"description\", \"parameters\"}})")
    return tuple(tool if "function" in tool else {"type": "function", "function": tool} for tool in value)


def turn_weight(turn: dict, role: str, where: str):
    if "weight" not in turn or turn["weight"] is None:
        return None
    weight = turn["weight"]
    if isinstance(weight, bool) or weight not in (0, 1):
        raise JobError(f"{where}.weight must be 0 (not trained) or 1 (trained), got {weight!r}")
    if role != "assistant":
        raise JobError(f"{where}.weight is set on a {role} turn; only assistant turns are trained, "
                       "so weights belong on them")
    return int(weight)


def chat_turns(turns, shape: ChatShape, where: str) -> tuple:
    """Parse a list of turns; returns ``(messages, weights)`` with one weight (None: default) per message."""
    if not isinstance(turns, list) or not turns:
        raise JobError(f"{where} field '{shape.turns_key}' must be a non-empty list "
                       f"of {{{shape.role_key}, {shape.content_key}}} objects")
    messages, weights = [], []
    for number, turn in enumerate(turns, start=1):
        label = f"{where} {shape.turns_key}[{number}]"
        if not isinstance(turn, dict) or shape.role_key not in turn \
                or (shape.content_key not in turn and "tool_calls" not in turn):
            raise JobError(f"{label} is missing '{shape.role_key}' or '{shape.content_key}'")
        kind = shape.roles.get(turn[shape.role_key])
        if kind is None:
            raise JobError(f"{label} has unknown {shape.role_key} '{turn[shape.role_key]}'; "
                           f"use one of {', '.join(sorted(shape.roles))}")
        content = turn.get(shape.content_key)
        if kind == "function_call":
            message = {"role": "assistant", "content": "",
                       "tool_calls": tool_calls(content, f"{label}.{shape.content_key}")}
        else:
            role = "tool" if kind == "observation" else kind
            calls = turn.get("tool_calls") if role == "assistant" else None
            text = "" if content is None and calls else content_text(content, f"{label}.{shape.content_key}")
            message = {"role": role, "content": text}
            if calls:
                message["tool_calls"] = tool_calls(calls, f"{label}.tool_calls")
            if role == "tool" and isinstance(turn.get("tool_call_id"), str):
                message["tool_call_id"] = turn["tool_call_id"]
        messages.append(message)
        weights.append(turn_weight(turn, message["role"], label))
    return messages, weights
