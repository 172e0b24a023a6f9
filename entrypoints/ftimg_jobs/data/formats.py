"""The one converter table: every data format becomes one common shape, for training and inference.

``CONVERTERS`` maps a format name to a function ``(record, conversion, need_answer)
→ SftExample``. Training converts a record whole; inference converts it with the
answer optional and takes ``prompt_of`` the example: the example without its last
answer, so the same file trains and prompts. The common shape is a chat
(``messages`` with roles system/user/assistant/tool, optional ``tools`` and
per-turn ``weights``), a raw ``prompt`` + ``completion``, or raw ``text`` (continued
pre-training). ``Conversion`` carries a dataset spec's settings: field mapping
(dotted keys), speaker tags, system prompt, Jinja prompt/answer templates,
placeholder variables and whether to use the chat template. Every error names the
file, line and field, and says what to do. Pure Python (no torch).
"""

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Union

from ftimg_jobs.data.chat import MESSAGES, SHAREGPT, chat_turns, shape_with_tags, tool_list
from ftimg_jobs.data.records import Record, field_value, has_field, read_records
from ftimg_jobs.data.templates import compile_template, fill_placeholders, render_template
from ftimg_jobs.errors import JobError

SFT_FORMAT_HELP = ("alpaca {instruction, input (optional), output}, "
                   "sharegpt {conversations: [{from, value}]}, "
                   "messages {messages: [{role, content}]}, "
                   "prompt/completion {prompt, completion}, "
                   "text {text} (raw text, every token trained); "
                   "or describe other fields with --dataset_spec / --columns")
PROMPT_FIELDS = "`messages`, `conversations`, `instruction` (+ optional `input`) or `prompt`"

# The fields each format reads unless a spec's ``columns`` maps them elsewhere.
DEFAULT_COLUMNS = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
               "history": "history"},
    "sharegpt": {"messages": "conversations", "system": "system", "tools": "tools"},
    "messages": {"messages": "messages", "system": "system", "tools": "tools"},
    "prompt_completion": {"prompt": "prompt", "response": "completion"},
    "text": {"text": "text"},
    "cls": {"text": "text", "label": "label"},
}
# Other tools' names for the same formats (LLaMA-Factory ``formatting``, axolotl ``type``).
FORMAT_ALIASES = {"vicuna": "sharegpt", "openai": "messages", "chat_template": "messages",
                  "completion": "text", "pretrain": "text", "raw": "text", "text_label": "cls",
                  "classification": "cls", "prompt/completion": "prompt_completion"}
FORMAT_NAMES = tuple(DEFAULT_COLUMNS) + ("auto",)


@dataclass(frozen=True)
class SftExample:
    """The common shape: a chat, a raw prompt + completion, or raw text."""

    messages: tuple = ()  # {"role", "content"} (+ "tool_calls" on assistant turns, "tool_call_id" on tool turns)
    prompt: str = ""
    completion: str = ""
    text: str = ""  # raw text: every token is trained
    tools: tuple = ()  # tool schemas offered to the model, OpenAI shape
    weights: tuple = ()  # one per message: None (default: assistant trained), 0 or 1


@dataclass(frozen=True)
class Conversion:
    """How one dataset's records become examples (the per-dataset part of a dataset spec)."""

    format: str = "auto"
    columns: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    system_prompt: str = ""
    prompt_template: str = ""
    answer_template: str = ""
    use_chat_template: bool = True
    variables: dict = field(default_factory=dict)
    origin: str = "data"  # where these settings were given, for template errors
    column_origins: dict = field(default_factory=dict)  # role -> where its column was mapped (spec entry or flags)

    def column(self, fmt: str, role: str) -> str:
        return self.columns.get(role) or DEFAULT_COLUMNS[fmt].get(role, role)

    def mapping_note(self, role: str) -> str:
        """Where a field name came from when the user mapped it: a missing field is then their mapping's."""
        if role not in self.columns:
            return ""
        return f"{role} is mapped to '{self.columns[role]}' by the columns of {self.column_origins.get(role, self.origin)}"

    def text(self, record: "Record", fmt: str, role: str, optional: bool = False, hint: str = "") -> str:
        """The string the record holds for ``role`` (see string_field), naming the user's mapping if it fails."""
        note = self.mapping_note(role)
        return string_field(record, self.column(fmt, role), fmt, optional=optional,
                            hint="; ".join(part for part in (hint, note) if part))


PLAIN = Conversion()


def canonical_format(name: str, origin: str) -> str:
    name = FORMAT_ALIASES.get(name, name)
    if name not in FORMAT_NAMES:
        raise JobError(f"{origin}: unknown data format '{name}'; use one of {', '.join(FORMAT_NAMES)} "
                       f"(or {', '.join(sorted(FORMAT_ALIASES))})")
    return name


def detect_format(record: Record, conversion: Conversion = PLAIN, for_prompt: bool = False) -> str:
    """Name the SFT format of a record from its keys (the spec's columns count as keys)."""
    if conversion.format != "auto":
        return conversion.format
    data = record.data

    def has(fmt, role):
        return has_field(data, conversion.column(fmt, role))

    if has("messages", "messages"):
        return "messages"
    if has("sharegpt", "messages"):
        return "sharegpt"
    if has("alpaca", "prompt") or (conversion.prompt_template and has("alpaca", "response")):
        return "alpaca"
    if has("prompt_completion", "prompt") and (for_prompt or has("prompt_completion", "response")):
        return "prompt_completion"
    if not for_prompt and has("text", "text") and "label" not in data:
        return "text"
    keys = ", ".join(sorted(data)) or "(none)"
    if for_prompt:
        raise JobError(f"{record.where}: no prompt field; expected {PROMPT_FIELDS} (keys seen: {keys})")
    raise JobError(f"{record.where}: unknown data format; keys seen: {keys}. Supported formats: {SFT_FORMAT_HELP}")


def record_label(record: Record) -> str:
    return f"{record.where}: record {record.number}"


def string_field(record: Record, key: str, fmt: str, optional: bool = False, hint: str = "") -> str:
    """The string at ``key`` (dotted); missing or mistyped values raise a JobError naming file, line, field."""
    try:
        value = field_value(record.data, key)
    except KeyError:
        if optional:
            return ""
        raise JobError(f"{record_label(record)} is missing field '{key}' required by the {fmt} format"
                       + (f"; {hint}" if hint else "")) from None
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise JobError(f"{record_label(record)} field '{key}' must be a string, got {type(value).__name__}"
                       + (f"; {hint}" if hint else ""))
    return value


@lru_cache(maxsize=64)
def cached_template(source: str, origin: str):
    return compile_template(source, origin)


def template_text(record: Record, conversion: Conversion, name: str) -> str:
    source = getattr(conversion, name)
    origin = f"{conversion.origin} {name}"
    fields = {**conversion.variables, **record.data}
    return render_template(cached_template(source, origin), origin, record.where, fields)


def system_of(record: Record, conversion: Conversion, fmt: str) -> str:
    """The record's own system field wins over the spec's system prompt."""
    own = conversion.text(record, fmt, "system", optional=True)
    return own or conversion.system_prompt


def answer_text(record: Record, conversion: Conversion, fmt: str, need_answer: bool) -> str:
    if conversion.answer_template:
        return template_text(record, conversion, "answer_template")
    key = conversion.column(fmt, "response")
    return conversion.text(record, fmt, "response", optional=not need_answer,
                           hint=f"map the answer with --columns response=FIELD, or write it with an --answer_template "
                                f"such as '{{{{ {key.split('.')[-1]} | tojson }}}}'")


def history_messages(record: Record, conversion: Conversion) -> list:
    key = conversion.column("alpaca", "history")
    if not has_field(record.data, key) or field_value(record.data, key) in (None, []):
        return []
    history = field_value(record.data, key)
    pairs_ok = isinstance(history, list) and all(
        isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(text, str) for text in pair)
        for pair in history)
    if not pairs_ok:
        raise JobError(f"{record_label(record)} field '{key}' must be a list of [question, answer] string pairs")
    messages = []
    for question, answer in history:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages


def alpaca_example(record: Record, conversion: Conversion, need_answer: bool) -> SftExample:
    fmt = "alpaca"
    if conversion.prompt_template:
        user = template_text(record, conversion, "prompt_template")
    else:
        instruction = conversion.text(record, fmt, "prompt")
        extra_input = conversion.text(record, fmt, "query", optional=True)
        user = f"{instruction}\n\n{extra_input}" if extra_input.strip() else instruction
    system = system_of(record, conversion, fmt)
    messages = ([{"role": "system", "content": system}] if system else []) + history_messages(record, conversion)
    messages.append({"role": "user", "content": user})
    if need_answer:  # a prompt never needs the answer, whose fields an inference record may lack
        messages.append({"role": "assistant", "content": answer_text(record, conversion, fmt, need_answer)})
    return finish_chat(record, conversion, messages, [None] * len(messages), (), need_answer)


def chat_example(fmt: str, record: Record, conversion: Conversion, need_answer: bool) -> SftExample:
    default_shape = SHAREGPT if fmt == "sharegpt" else MESSAGES
    key = conversion.column(fmt, "messages")
    shape = shape_with_tags(default_shape, conversion.tags, key)
    try:
        turns = field_value(record.data, key)
    except KeyError:
        note = conversion.mapping_note("messages")
        raise JobError(f"{record_label(record)} is missing field '{key}' required by the {fmt} format"
                       + (f"; {note}" if note else "")) from None
    messages, weights = chat_turns(turns, shape, record_label(record))
    system = system_of(record, conversion, fmt)
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
        weights.insert(0, None)
    tools_key = conversion.column(fmt, "tools")
    tools = tool_list(field_value(record.data, tools_key), f"{record_label(record)} field '{tools_key}'") \
        if has_field(record.data, tools_key) else ()
    return finish_chat(record, conversion, messages, weights, tools, need_answer)


def finish_chat(record, conversion, messages, weights, tools, need_answer) -> SftExample:
    if conversion.variables:
        messages = [{**message, "content": fill_placeholders(message["content"], conversion.variables)}
                    for message in messages]
    if need_answer and messages[-1]["role"] != "assistant":
        raise JobError(f"{record_label(record)} must end with an assistant turn "
                       "(it is what the model learns to produce)")
    if not conversion.use_chat_template:
        return without_chat_template(record, messages, tools)
    keep_weights = tuple(weights) if any(weight is not None for weight in weights) else ()
    return SftExample(messages=tuple(messages), tools=tuple(tools), weights=keep_weights)


def without_chat_template(record: Record, messages: list, tools) -> SftExample:
    """``use_chat_template: false``: one question and its answer as raw prompt + completion text."""
    answer = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
    asked = messages[:-1] if answer else messages
    if tools or any(message["role"] not in ("system", "user") for message in asked) \
            or [m["role"] for m in asked].count("user") != 1:
        raise JobError(f"{record_label(record)}: use_chat_template false takes single-turn records without tools "
                       "(system, user, assistant); multi-turn and tool-calling chats need the chat template")
    return SftExample(prompt="\n\n".join(message["content"] for message in asked), completion=answer)


def prompt_completion_example(record: Record, conversion: Conversion, need_answer: bool) -> SftExample:
    fmt = "prompt_completion"
    prompt = template_text(record, conversion, "prompt_template") if conversion.prompt_template \
        else conversion.text(record, fmt, "prompt")
    system = conversion.system_prompt
    prompt = fill_placeholders(f"{system}\n\n{prompt}" if system else prompt, conversion.variables)
    answer = answer_text(record, conversion, fmt, need_answer) if need_answer else ""
    return SftExample(prompt=prompt, completion=fill_placeholders(answer, conversion.variables))


def text_example(record: Record, conversion: Conversion, need_answer: bool) -> SftExample:
    text = template_text(record, conversion, "prompt_template") if conversion.prompt_template \
        else conversion.text(record, "text", "text")
    if not text.strip():
        raise JobError(f"{record_label(record)} field '{conversion.column('text', 'text')}' is empty")
    return SftExample(text=fill_placeholders(text, conversion.variables))


CONVERTERS = {
    "alpaca": alpaca_example,
    "sharegpt": lambda record, conversion, need_answer: chat_example("sharegpt", record, conversion, need_answer),
    "messages": lambda record, conversion, need_answer: chat_example("messages", record, conversion, need_answer),
    "prompt_completion": prompt_completion_example,
    "text": text_example,
}


def to_sft_example(record: Record, fmt: str, conversion: Conversion = PLAIN) -> SftExample:
    """Normalise one training record of the given format, raising JobError on missing or mistyped fields."""
    if fmt not in CONVERTERS:
        raise JobError(f"{conversion.origin}: format '{fmt}' is for classification jobs (*-cls), not SFT")
    return CONVERTERS[fmt](record, conversion, True)


# What a model is asked to continue: a raw prompt string, or chat messages (a ToolPrompt when tools are offered).
Prompt = Union[str, list]


class ToolPrompt(list):
    """Chat messages of a prompt that offers tools: a list, so it reads like any chat prompt, plus ``tools``."""

    def __init__(self, messages, tools):
        super().__init__(messages)
        self.tools = tuple(tools)


def prompt_of(example: SftExample, where: str):
    """The prompt of an example: a raw prompt string, or the chat without its last answer."""
    if example.text:
        raise JobError(f"{where}: raw text records have no prompt; give `prompt` or chat records to infer from")
    if not example.messages:
        if not example.prompt:
            raise JobError(f"{where}: `prompt` must be a non-empty string")
        return example.prompt
    messages = list(example.messages)
    if messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if not messages:
        raise JobError(f"{where}: the conversation has no turn before the assistant's answer to use as a prompt")
    return ToolPrompt(messages, example.tools) if example.tools else messages


def record_prompt(record: Record, conversion: Conversion = PLAIN):
    """The prompt of one inference record: the record converted with its answer optional, minus the answer."""
    fmt = detect_format(record, conversion, for_prompt=True)
    if fmt == "cls":
        raise JobError(f"{conversion.origin}: format 'cls' trains classifiers; infer needs a generation format")
    return prompt_of(CONVERTERS[fmt](record, conversion, False), record.where)


def load_sft_examples(path, conversion: Conversion = PLAIN) -> tuple:
    """Read and validate an SFT data file; return ``(format name, [SftExample])``."""
    records = read_records(path)
    fmt = detect_format(records[0], conversion)
    return fmt, [to_sft_example(record, fmt, conversion) for record in records]
