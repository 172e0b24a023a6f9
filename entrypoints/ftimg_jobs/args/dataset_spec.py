"""The dataset-spec flags every job that reads records takes (sft, cls, and infer for the prompt side).

They are the keys of a ``--dataset_spec`` file given as flags; with a spec they
apply over every dataset in it. Documented in entrypoints/data/README.md.
"""

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class DatasetSpecArguments:
    """How records become examples: a spec file, or its keys one by one."""

    dataset_spec: Optional[str] = field(default=None, metadata={
        "help": "YAML or JSON dataset description: files, format, columns, templates, datasets mixed by ratio "
                "(its paths replace --data_path)."})
    data_format: str = field(default="auto", metadata={
        "help": "auto (from the keys), alpaca, sharegpt, messages, prompt_completion, text (raw, every token "
                "trained) or cls."})
    columns: Optional[str] = field(default=None, metadata={
        "help": "Field mapping, e.g. prompt=text,response=label or a JSON object; roles: prompt, query, response, "
                "system, history, messages, text, label, tools; nested fields as a.b."})
    system_prompt: Optional[str] = field(default=None, metadata={
        "help": "System prompt for records that have none."})
    prompt_template: Optional[str] = field(default=None, metadata={
        "help": "Jinja template of the user turn, with the record's fields, e.g. 'Classify: {{ text }}'."})
    answer_template: Optional[str] = field(default=None, metadata={
        "help": "Jinja template of the answer, e.g. '{{ label | tojson }}'."})
    use_chat_template: Optional[bool] = field(default=None, metadata={
        "help": "Render chats with the tokenizer's chat template (default True); False: single-turn records "
                "become raw prompt + completion text."})
    template_variables: Optional[str] = field(default=None, metadata={
        "help": "Values of {{name}} placeholders in the data, e.g. name=Qwen,author=Alibaba or a JSON object."})
