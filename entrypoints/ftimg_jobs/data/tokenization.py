"""Turn normalised SFT examples into token ids and loss labels (prompt tokens masked with -100).

Chats are rendered with the tokenizer's chat template (model/chat_template.py's
when it has none) one assistant turn at a time, so exactly the assistant's
tokens are trained; an assistant turn with weight 0 is masked too. Tools go
through the template's own tool support or the text fallback of data/tool_text.py.
Raw prompt/completion records are used verbatim: prompt masked, completion + EOS
trained. Raw text (continued pre-training): BOS + text + EOS, every token trained. Only the tokenizer's ``__call__`` and
``apply_chat_template`` are used, so this stays torch-free and testable with a
fake tokenizer.
"""

from ftimg_jobs.data.tool_text import as_plain_turns, needs_tools, template_handles_tools
from ftimg_jobs.errors import JobError

IGNORE_INDEX = -100

def token_ids(tokenizer, text: str, add_special_tokens: bool = False) -> list:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]) if text else []


def template_messages(tokenizer, messages, tools) -> tuple:
    """``(messages, tools)`` as this tokenizer's template takes them: natively, or tools written as text."""
    tools = tuple(tools or getattr(messages, "tools", ()))
    if needs_tools(messages, tools) and not template_handles_tools(tokenizer):
        return as_plain_turns(messages, tools), ()
    return [dict(message) for message in messages], tools


def render(tokenizer, messages, add_generation_prompt: bool, tools=()) -> str:
    """The chat as text; ``tools`` (or a ToolPrompt's own) are offered to the model."""
    messages, tools = template_messages(tokenizer, messages, tools)
    extra = {"tools": list(tools)} if tools else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **extra)


def chat_segments(tokenizer, messages, tools=(), weights=()) -> list:
    """Split a rendered chat into ``(text, is_trained)`` pieces, in order.

    An assistant turn is trained unless its weight (``weights[index]``) is 0.
    """
    segments, rendered = [], ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:index], add_generation_prompt=True, tools=tools)
        through_answer = render(tokenizer, messages[:index + 1], add_generation_prompt=False, tools=tools)
        if not prompt.startswith(rendered) or not through_answer.startswith(prompt):
            raise JobError("the tokenizer's chat template renders earlier turns differently once later turns "
                           "are added, so prompt tokens cannot be masked; pass --train_on_prompt True "
                           "or set a prefix-stable chat template")
        segments.append((prompt[len(rendered):], False))
        trained = not weights or weights[index] is None or weights[index] == 1
        segments.append((through_answer[len(prompt):], trained))
        rendered = through_answer
    return segments


def tokenize_example(example, tokenizer, max_length, train_on_prompt: bool) -> tuple:
    """Return ``(input_ids, labels)`` truncated to ``max_length`` (None: no truncation)."""
    if example.text:
        ids = token_ids(tokenizer, example.text, add_special_tokens=True)
        if tokenizer.eos_token_id is not None:
            ids.append(tokenizer.eos_token_id)
        return ids[:max_length], list(ids[:max_length])
    if example.messages:
        pieces = [(token_ids(tokenizer, text), trained) for text, trained
                  in chat_segments(tokenizer, example.messages, example.tools, example.weights)]
    else:
        completion = token_ids(tokenizer, example.completion)
        if tokenizer.eos_token_id is not None:
            completion.append(tokenizer.eos_token_id)
        pieces = [(token_ids(tokenizer, example.prompt, add_special_tokens=True), False), (completion, True)]
    input_ids, labels = [], []
    for ids, trained in pieces:
        input_ids.extend(ids)
        labels.extend(ids if trained or train_on_prompt else [IGNORE_INDEX] * len(ids))
    return input_ids[:max_length], labels[:max_length]


def tokenize_examples(examples, tokenizer, max_length, train_on_prompt: bool) -> tuple:
    """Tokenize all examples; drop those whose trained tokens were all cut off by truncation.

    Returns ``(list of (input_ids, labels), number dropped)``.
    """
    kept, dropped = [], 0
    for example in examples:
        input_ids, labels = tokenize_example(example, tokenizer, max_length, train_on_prompt)
        if any(label != IGNORE_INDEX for label in labels):
            kept.append((input_ids, labels))
        else:
            dropped += 1
    return kept, dropped


def pack_sequences(sequences, block_size: int) -> list:
    """Concatenate ``(input_ids, labels)`` pairs and cut them into blocks of ``block_size`` tokens.

    Naive packing: attention crosses example boundaries inside a block, which
    costs little and removes all padding. A last short block is kept only if it
    still has trained tokens.
    """
    all_ids, all_labels = [], []
    for input_ids, labels in sequences:
        all_ids.extend(input_ids)
        all_labels.extend(labels)
    blocks = []
    for start in range(0, len(all_ids), block_size):
        labels = all_labels[start:start + block_size]
        if any(label != IGNORE_INDEX for label in labels):
            blocks.append((all_ids[start:start + block_size], labels))
    return blocks
