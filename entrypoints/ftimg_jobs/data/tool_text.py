"""Tool calling for chat templates that know nothing of tools: the documented text fallback (torch-free).

A tokenizer whose chat template handles ``tools`` and ``tool_calls`` (Qwen2.5,
Llama 3.1, Mistral, ...) gets them through ``apply_chat_template(tools=...)``.
Any other template sees plain turns in the Hermes/Qwen text convention:
- the tools are listed in the system message, inside ``<tools>…</tools>``, one JSON schema a line;
- an assistant's tool call is its content followed by ``<tool_call>{"name", "arguments"}</tool_call>``;
- a tool's answer becomes a user turn wrapped in ``<tool_response>…</tool_response>``
  (user, not a new role, so templates that insist on user/assistant alternation still work).
"""

import json

TOOLS_INTRO = ("You can call these tools. To call one, answer with "
               "<tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>.")


def template_handles_tools(tokenizer) -> bool:
    source = getattr(tokenizer, "chat_template", None) or ""
    source = source if isinstance(source, str) else json.dumps(source)
    return "tools" in source and "tool_calls" in source


def needs_tools(messages, tools) -> bool:
    return bool(tools) or any(message.get("tool_calls") or message["role"] == "tool" for message in messages)


def tools_block(tools) -> str:
    lines = "\n".join(json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools)
    return f"{TOOLS_INTRO}\n<tools>\n{lines}\n</tools>"


def call_text(call: dict) -> str:
    function = call["function"]
    return "<tool_call>\n" + json.dumps({"name": function["name"], "arguments": function["arguments"]},
                                        ensure_ascii=False) + "\n</tool_call>"


def as_plain_turns(messages, tools) -> list:
    """Messages with tools, tool calls and tool answers written out as text, for a template without tools."""
    plain = []
    for message in messages:
        if message["role"] == "tool":
            plain.append({"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"})
        elif message.get("tool_calls"):
            calls = "\n".join(call_text(call) for call in message["tool_calls"])
            plain.append({"role": "assistant", "content": f"{message['content']}\n{calls}".lstrip("\n")})
        else:
            plain.append({"role": message["role"], "content": message["content"]})
    if tools:
        if plain and plain[0]["role"] == "system":
            plain[0] = {"role": "system", "content": f"{plain[0]['content']}\n\n{tools_block(tools)}"}
        else:
            plain.insert(0, {"role": "system", "content": tools_block(tools)})
    return plain
