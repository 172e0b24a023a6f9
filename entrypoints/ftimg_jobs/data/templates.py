"""Jinja prompt/answer templates of a dataset spec, and the ``{{name}}`` placeholders datasets document.

Templates run in Jinja's sandbox with strict undefined names, so a typo in a field
name is an error naming the record, not an empty string trained into the model.
``tojson`` is replaced by one that keeps non-ASCII text and key order
(``json.dumps(value, ensure_ascii=False)``), the way answers are usually written.
jinja2 is imported only when a spec uses a template.
"""

import json
import re

from ftimg_jobs.errors import JobError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def to_json(value, indent=None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def compile_template(source: str, origin: str):
    """Compile ``source``; ``origin`` (e.g. ``spec.yaml: answer_template``) names it in errors."""
    from jinja2 import StrictUndefined, TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    environment.filters["tojson"] = to_json
    try:
        return environment.from_string(source)
    except TemplateSyntaxError as error:
        raise JobError(f"{origin}: template error on its line {error.lineno}: {error.message}; "
                       "fix the Jinja syntax ({{ field }}, {% if %}...{% endif %})") from None


def render_template(template, origin: str, where: str, fields: dict) -> str:
    """Render for one record; errors name the record (``where``) and the template (``origin``)."""
    from jinja2 import TemplateError, UndefinedError

    try:
        return template.render(**fields)
    except UndefinedError as error:
        raise JobError(f"{where}: {origin}: {error.message}; the record's fields are "
                       f"{', '.join(sorted(fields)) or '(none)'}") from None
    except (TemplateError, TypeError, ValueError) as error:
        raise JobError(f"{where}: {origin} failed: {error}") from None


def fill_placeholders(text: str, variables: dict) -> str:
    """Replace ``{{name}}`` for each name in ``variables``; other braces in the data stay as they are."""
    if not variables or "{{" not in text:
        return text
    return PLACEHOLDER.sub(lambda match: str(variables[match.group(1)]) if match.group(1) in variables
                           else match.group(0), text)
