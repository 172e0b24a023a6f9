"""The chat template of tokenizers that have none, and of the embedded tiny model."""

# Zephyr-style turns: "<|role|>\n" + content + EOS. Documented in the data README;
# also the tiny model's template so the default pipeline uses exactly this text.
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token or '' }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + (eos_token or '') + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
