"""A character-level fake tokenizer for the data tests: one token per character, a template like the default."""

from ftimg_jobs.data.tokenization import IGNORE_INDEX


class CharTokenizer:
    """One token per character (its code point); a template shaped like the default one."""

    bos_token_id, eos_token_id = 1, 2

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": ([self.bos_token_id] if add_special_tokens else []) + [ord(c) for c in text]}

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<{m['role']}>{m['content']}|" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")


def trained_text(input_ids, labels):
    return "".join(chr(i) for i, label in zip(input_ids, labels) if label != IGNORE_INDEX)
