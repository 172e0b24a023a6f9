"""The optimizer choice for full fine-tuning: fp32 AdamW where its state fits, 8-bit where it does not."""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ftimg_jobs.train import optimizer  # noqa: E402


@pytest.fixture
def gpu_with_bitsandbytes(monkeypatch):
    """Seen from the optimizer module only: TrainingArguments itself would set up the missing GPU."""
    real_find_spec = optimizer.importlib.util.find_spec
    monkeypatch.setattr(optimizer, "torch", SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True)))
    monkeypatch.setattr(optimizer.importlib.util, "find_spec",
                        lambda name, *rest: object() if name == "bitsandbytes" else real_find_spec(name, *rest))


def choose(tmp_path, eight_bit, fits, use_lora=False, **training):
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", **training)
    asked = []

    def fp32_state_fits():
        asked.append(True)
        return fits

    choice = optimizer.choose_optimizer(args, SimpleNamespace(use_lora=use_lora),
                                        SimpleNamespace(eight_bit_optimizer=eight_bit), fp32_state_fits)
    return choice, args, asked


def test_unset_keeps_fp32_adamw_where_it_fits(tmp_path, gpu_with_bitsandbytes):
    choice, args, asked = choose(tmp_path, None, fits=True)
    default = transformers.TrainingArguments.__dataclass_fields__["optim"].default
    assert choice["optim"] == getattr(default, "value", default) != optimizer.EIGHT_BIT_OPTIMIZER
    assert "fits the memory budget" in choice["reason"] and asked == [True]


def test_unset_falls_back_to_eight_bit_where_fp32_state_does_not_fit(tmp_path, gpu_with_bitsandbytes):
    choice, args, _ = choose(tmp_path, None, fits=False)
    assert choice["optim"] == optimizer.EIGHT_BIT_OPTIMIZER == args.optim
    assert "does not fit" in choice["reason"]


def test_true_forces_eight_bit_without_asking_the_budget(tmp_path, gpu_with_bitsandbytes):
    choice, args, asked = choose(tmp_path, True, fits=True)
    assert choice["optim"] == optimizer.EIGHT_BIT_OPTIMIZER and asked == []
    assert "--eight_bit_optimizer True" in choice["reason"]


def test_the_users_own_choices_win(tmp_path, gpu_with_bitsandbytes):
    assert choose(tmp_path, True, fits=False, optim="sgd")[0] == {"optim": "sgd", "reason": "--optim given"}
    assert choose(tmp_path, False, fits=False)[0]["reason"] == "--eight_bit_optimizer False or --deepspeed given"
    assert "LoRA" in choose(tmp_path, True, fits=False, use_lora=True)[0]["reason"]


def test_cpu_keeps_the_default_optimizer(tmp_path, monkeypatch):
    monkeypatch.setattr(optimizer, "torch", SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: False)))
    choice, _, asked = choose(tmp_path, None, fits=False)
    assert "needs bitsandbytes and a CUDA GPU" in choice["reason"] and asked == []
