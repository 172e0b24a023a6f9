"""Prompt/answer templates and seed 001's NER answers (needs jinja2: runs where the jobs' stack is installed)."""

import json
from pathlib import Path

import pytest

pytest.importorskip("jinja2")

from ftimg_jobs.data.formats import Conversion, load_sft_examples, to_sft_example  # noqa: E402
from ftimg_jobs.data.labels import load_cls_records  # noqa: E402
from ftimg_jobs.data.records import Record  # noqa: E402
from ftimg_jobs.data.spec import load_spec_document, parse_spec  # noqa: E402
from ftimg_jobs.errors import JobError  # noqa: E402
from project_paths import SAMPLE_DATA

NER_DIR = SAMPLE_DATA / "ner"


def test_ner_spec_targets_are_the_labels_as_json():
    spec_path = NER_DIR / "ner_spec.yaml"
    sources, eval_source = parse_spec(load_spec_document(str(spec_path)), str(spec_path), NER_DIR)
    for source in (*sources, eval_source):
        _, examples = load_sft_examples(source.paths[0], source.conversion)
        labels = [json.loads(line)["label"] for line in Path(source.paths[0]).read_text(encoding="utf-8").splitlines()]
        assert [json.loads(example.messages[-1]["content"]) for example in examples] == labels
        assert all(example.messages[0]["role"] == "system" for example in examples)
        assert "张三" in examples[0].messages[-1]["content"] or source is eval_source  # non-ASCII kept as is


def test_prompt_template_sees_the_record_and_variables():
    conversion = Conversion(format="alpaca", prompt_template="{{ task }}: {{ doc.title }}",
                            answer_template="{{ label | tojson }}", variables={"task": "Tag"})
    example = to_sft_example(Record("d.jsonl:3", 3, {"doc": {"title": "标题"}, "label": ["a"]}), "alpaca", conversion)
    assert example.messages == ({"role": "user", "content": "Tag: 标题"}, {"role": "assistant", "content": '["a"]'})


def test_template_naming_an_absent_field_names_record_and_fields():
    conversion = Conversion(format="alpaca", prompt_template="{{ txt }}", answer_template="x", origin="s.yaml")
    with pytest.raises(JobError, match=r"d\.jsonl:3: s\.yaml prompt_template: 'txt' is undefined; "
                                       r"the record's fields are label, text"):
        to_sft_example(Record("d.jsonl:3", 3, {"text": "t", "label": 1}), "alpaca", conversion)


def test_template_syntax_error_names_the_template():
    conversion = Conversion(format="alpaca", prompt_template="{{ text ", answer_template="x", origin="s.yaml")
    with pytest.raises(JobError, match=r"s\.yaml prompt_template: template error on its line 1"):
        to_sft_example(Record("d.jsonl:1", 1, {"text": "t"}), "alpaca", conversion)


def test_cls_text_from_a_template_and_label_from_a_nested_field(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"review": {"title": "好", "body": "很好"}, "meta": {"stars": 5}},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    conversion = Conversion(prompt_template="{{ review.title }}\n{{ review.body }}", columns={"label": "meta.stars"})
    assert load_cls_records(path, conversion)[0].data == {"text": "好\n很好", "label": 5}
