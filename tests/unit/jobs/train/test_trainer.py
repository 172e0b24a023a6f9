"""JobTrainer (train/trainer.py): the FLOPs it logs are transformers' own, with the parameters counted once."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from ftimg_jobs.train.trainer import JobTrainer  # noqa: E402


def test_flops_match_transformers_and_the_model_is_counted_once(tmp_path):
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, vocab_size=64)
    model = peft.get_peft_model(transformers.LlamaForCausalLM(config),
                                peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = JobTrainer(model=model, args=args)
    counts = []
    count_parameters = model.num_parameters

    def counting(*args, **kwargs):
        counts.append(kwargs)
        return count_parameters(*args, **kwargs)

    model.num_parameters = counting
    for length in (8, 8, 13):
        inputs = {"input_ids": torch.zeros(2, length, dtype=torch.long)}
        assert trainer.floating_point_ops(inputs) == transformers.Trainer.floating_point_ops(trainer, inputs)
    transformers_calls = 3
    assert len(counts) == 1 + transformers_calls  # JobTrainer once; transformers' own once a call
    assert trainer.floating_point_ops({"labels": torch.zeros(2, 8)}) == 0  # no input ids: transformers' answer
