"""Dataset specs: keys, other tools' spellings, ratios and every problem reported at once (torch-free)."""

import json

import pytest

from ftimg_jobs.data.formats import Conversion
from ftimg_jobs.data.loading import combine, data_sources, flag_settings
from ftimg_jobs.data.mixing import mix_by_ratio
from ftimg_jobs.data.spec import load_spec_document, parse_spec
from ftimg_jobs.errors import JobError
from project_paths import SAMPLE_DATA

NER_SPEC = SAMPLE_DATA / "ner" / "ner_spec.yaml"


class Flags:
    """The data flags of a job, as the parser leaves them."""

    def __init__(self, **given):
        self.dataset_spec, self.data_format, self.columns, self.system_prompt = None, "auto", None, None
        self.prompt_template = self.answer_template = self.use_chat_template = self.template_variables = None
        self.eval_data_path = None
        self.__dict__.update(given)


def spec(tmp_path, document, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def touch(tmp_path, *names):
    for name in names:
        (tmp_path / name).write_text('{"text": "x"}\n', encoding="utf-8")


def test_shipped_ner_spec_reads_as_seed_001_describes_it():
    sources, eval_source = parse_spec(load_spec_document(str(NER_SPEC)), str(NER_SPEC), NER_SPEC.parent)
    conversion = sources[0].conversion
    assert (conversion.format, conversion.columns, conversion.use_chat_template) == ("alpaca", {"prompt": "text"}, True)
    assert conversion.answer_template == "{{ label | tojson }}" and "Ner" in conversion.system_prompt
    assert sources[0].paths == (str(NER_SPEC.parent / "train.jsonl"),)
    assert eval_source.paths == (str(NER_SPEC.parent / "eval.jsonl"),)


def test_llamafactory_dataset_info_entries_are_datasets(tmp_path):
    touch(tmp_path, "identity.json", "chat.json")
    info = spec(tmp_path, {
        "identity": {"file_name": "identity.json"},
        "chat": {"file_name": "chat.json", "formatting": "sharegpt", "columns": {"messages": "conversations"},
                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}},
        name="dataset_info.json")
    sources, _ = parse_spec(load_spec_document(str(info)), str(info), tmp_path)
    assert [source.paths[0] for source in sources] == [str(tmp_path / "identity.json"), str(tmp_path / "chat.json")]
    assert sources[1].conversion.format == "sharegpt" and sources[1].conversion.tags["user_tag"] == "human"


def test_dataset_info_reference_with_a_name(tmp_path):
    touch(tmp_path, "identity.json")
    spec(tmp_path, {"identity": {"file_name": "identity.json"}}, name="dataset_info.json")
    document = {"datasets": [{"dataset_info": "dataset_info.json", "name": "identity"}],
                "template_variables": {"name": "Ftimg", "author": "us"}}
    sources, _ = parse_spec(document, "s.yaml", tmp_path)
    assert sources[0].paths == (str(tmp_path / "identity.json"),)
    assert sources[0].conversion.variables == {"name": "Ftimg", "author": "us"}


def test_axolotl_keys_map_to_format_and_columns(tmp_path):
    touch(tmp_path, "a.jsonl")
    document = {"datasets": [{"path": "a.jsonl", "type": "alpaca", "field_instruction": "q", "field_output": "a",
                              "ds_type": "json"}]}
    sources, _ = parse_spec(document, "s.yaml", tmp_path)
    assert sources[0].conversion.format == "alpaca"
    assert sources[0].conversion.columns == {"prompt": "q", "response": "a"}


def test_every_problem_is_reported_at_once(tmp_path):
    document = {"datasets": [{"path": "missing.jsonl", "formatt": "alpaca", "columns": {"promt": "x"}},
                             {"path": "x.jsonl", "format": "nope", "hf_hub_url": "org/ds"}]}
    with pytest.raises(JobError) as raised:
        parse_spec(document, "s.yaml", tmp_path)
    message = str(raised.value)
    for expected in ("s.yaml datasets[1]: data file", "missing.jsonl not found", "unknown key 'formatt' (did you mean",
                     "columns: unknown key 'promt' (did you mean 'prompt'?)", "unknown data format 'nope'",
                     "never downloaded"):
        assert expected in message


@pytest.mark.parametrize("ratios, message", [
    ([0.5, 0.2], "ratios sum to 0.7; give each dataset its share"),
    ([0.5, None], "give every dataset a ratio or none"),
    ([-1, 2], "ratio must be a positive number"),
])
def test_ratios_that_do_not_sum_sensibly_are_refused(tmp_path, ratios, message):
    touch(tmp_path, "a.jsonl", "b.jsonl")
    entries = [{"path": name, **({"ratio": ratio} if ratio is not None else {})}
               for name, ratio in zip(("a.jsonl", "b.jsonl"), ratios)]
    with pytest.raises(JobError, match=message):
        parse_spec({"datasets": entries}, "s.yaml", tmp_path)


def test_mix_by_ratio_takes_shares_without_repeating():
    mixed, counts = mix_by_ratio([list(range(100)), list(range(100, 110))], [0.8, 0.2], seed=1)
    assert counts == [40, 10] and len(set(mixed)) == 50
    assert mix_by_ratio([list(range(100)), list(range(100, 110))], [0.8, 0.2], seed=1)[0] == mixed


def test_combine_logs_the_mix():
    class Source:
        def __init__(self, ratio, where):
            self.ratio, self.where = ratio, where
    mixed, notes = combine([[1, 2, 3, 4], [5, 6]], (Source(0.5, "a"), Source(0.5, "b")), seed=0)
    assert len(mixed) == 4 and notes[0] == "mix: 2 of 4 from a (ratio 0.5)"


def test_flags_apply_over_the_spec_and_alone(tmp_path):
    touch(tmp_path, "d.jsonl")
    path = spec(tmp_path, {"data_path": "d.jsonl", "format": "alpaca", "system_prompt": "from spec"})
    sources, _ = data_sources(Flags(dataset_spec=str(path), system_prompt="from flag",
                                    columns="prompt=q,response=a.b"), None)
    conversion = sources[0].conversion
    assert (conversion.system_prompt, conversion.columns, conversion.format) == (
        "from flag", {"prompt": "q", "response": "a.b"}, "alpaca")
    alone, _ = data_sources(Flags(data_format="text", template_variables='{"name": "x"}'), str(tmp_path / "d.jsonl"))
    assert alone[0].conversion.format == "text" and alone[0].conversion.variables == {"name": "x"}
    assert flag_settings(Flags()) == {}


def test_eval_data_path_converts_like_the_first_dataset(tmp_path):
    touch(tmp_path, "d.jsonl", "e.jsonl")
    path = spec(tmp_path, {"data_path": "d.jsonl", "columns": {"prompt": "q"}})
    _, eval_source = data_sources(Flags(dataset_spec=str(path), eval_data_path=str(tmp_path / "e.jsonl")), None)
    assert eval_source.conversion.columns == {"prompt": "q"}


def test_bad_spec_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [\n  - a\n", encoding="utf-8")
    with pytest.raises(JobError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_spec_document(str(bad))
    with pytest.raises(JobError, match="--dataset_spec .*nope.yaml: no such file"):
        load_spec_document(str(tmp_path / "nope.yaml"))
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n", encoding="utf-8")
    with pytest.raises(JobError, match="must be a mapping"):
        load_spec_document(str(listing))


def test_columns_flag_in_a_bad_form_is_named(tmp_path):
    touch(tmp_path, "d.jsonl")
    with pytest.raises(JobError, match="columns must be a mapping"):
        data_sources(Flags(columns="prompt"), str(tmp_path / "d.jsonl"))


def test_conversion_default_columns_per_format():
    assert Conversion().column("alpaca", "prompt") == "instruction"
    assert Conversion(columns={"prompt": "text"}).column("alpaca", "prompt") == "text"
