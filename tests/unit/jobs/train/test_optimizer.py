"""The optimizer choice for full fine-tuning: fp32 AdamW where it costs no recompute, 8-bit where it would,
and a resumed run keeps its checkpoint's kind."""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ftimg_jobs.train import optimizer  # noqa: E402

EIGHT_BIT = optimizer.EIGHT_BIT_OPTIMIZER


@pytest.fixture
def gpu_with_bitsandbytes(monkeypatch):
    """Seen from the optimizer module only: TrainingArguments itself would set up the missing GPU."""
    real_find_spec = optimizer.importlib.util.find_spec
    monkeypatch.setattr(optimizer, "torch", SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True)))
    monkeypatch.setattr(optimizer.importlib.util, "find_spec",
                        lambda name, *rest: object() if name == "bitsandbytes" else real_find_spec(name, *rest))


def choose(tmp_path, eight_bit, needed, use_lora=False, resumed=None, **training):
    """``needed``: checkpointed layers each optimizer would need ({optim: count or None})."""
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", **training)
    asked = []

    def layers_needed(optim):
        asked.append(optim)
        return needed[optim]

    choice = optimizer.choose_optimizer(args, SimpleNamespace(use_lora=use_lora),
                                        SimpleNamespace(eight_bit_optimizer=eight_bit), layers_needed, resumed)
    return choice, args, asked


ROOMY = {optimizer.FUSED_ADAMW: 0, EIGHT_BIT: 0}
TIGHT = {optimizer.FUSED_ADAMW: 12, EIGHT_BIT: 0}
CRAMPED = {optimizer.FUSED_ADAMW: None, EIGHT_BIT: 32}


def test_unset_keeps_fused_fp32_adamw_where_it_costs_no_recompute(tmp_path, gpu_with_bitsandbytes):
    choice, args, asked = choose(tmp_path, None, ROOMY)
    assert choice["optim"] == optimizer.FUSED_ADAMW == args.optim
    assert "as few as 8-bit AdamW would need" in choice["reason"] and set(asked) == set(ROOMY)


def test_the_older_stacks_foreach_default_becomes_the_fused_kernel(tmp_path):
    """transformers before torch 2.8 defaults to foreach AdamW, whose step allocates a state-sized temporary."""
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert optimizer.use_fp32(args, "adamw_torch", "why")["optim"] == optimizer.FUSED_ADAMW == args.optim
    assert optimizer.use_fp32(args, "adamw_torch_fused", "why")["optim"] == "adamw_torch_fused"


def test_unset_takes_eight_bit_where_fp32_would_need_recompute_or_not_fit(tmp_path, gpu_with_bitsandbytes):
    for needed, words in ((TIGHT, "12 against 0"), (CRAMPED, "does not fit")):
        choice, args, _ = choose(tmp_path, None, needed)
        assert choice["optim"] == EIGHT_BIT == args.optim and words in choice["reason"]


def test_a_resumed_run_keeps_the_kind_its_checkpoint_has(tmp_path, gpu_with_bitsandbytes):
    choice, args, asked = choose(tmp_path, None, ROOMY, resumed="paged_adamw_8bit")
    assert choice["optim"] == EIGHT_BIT and "checkpoint resumed" in choice["reason"] and asked == []
    choice, args, asked = choose(tmp_path, None, CRAMPED, resumed="adamw_torch")
    assert choice["optim"] == optimizer.FUSED_ADAMW and asked == []  # same state keys as foreach AdamW


def test_true_forces_eight_bit_without_asking_the_budget(tmp_path, gpu_with_bitsandbytes):
    choice, args, asked = choose(tmp_path, True, ROOMY, resumed="adamw_torch_fused")
    assert choice["optim"] == EIGHT_BIT and asked == []
    assert "--eight_bit_optimizer True" in choice["reason"]


def test_the_users_own_choices_win(tmp_path, gpu_with_bitsandbytes):
    assert choose(tmp_path, True, CRAMPED, optim="sgd")[0] == {"optim": "sgd", "reason": "--optim given"}
    assert choose(tmp_path, False, CRAMPED)[0]["reason"] == "--eight_bit_optimizer False or --deepspeed given"
    assert "LoRA" in choose(tmp_path, True, CRAMPED, use_lora=True)[0]["reason"]


def test_cpu_keeps_the_default_optimizer(tmp_path, monkeypatch):
    monkeypatch.setattr(optimizer, "torch", SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: False)))
    choice, _, asked = choose(tmp_path, None, CRAMPED)
    assert "needs bitsandbytes and a CUDA GPU" in choice["reason"] and asked == []


def test_the_optimizer_a_checkpoint_was_trained_with_is_read_from_its_training_args(tmp_path):
    checkpoint = tmp_path / "checkpoint-10"
    checkpoint.mkdir()
    assert optimizer.checkpoint_optimizer(str(checkpoint)) is None and optimizer.checkpoint_optimizer(None) is None
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", optim="paged_adamw_8bit")
    torch.save(args, checkpoint / "training_args.bin")
    assert optimizer.checkpoint_optimizer(str(checkpoint)) == "paged_adamw_8bit"
    (checkpoint / "training_args.bin").write_bytes(b"not a pickle")
    assert optimizer.checkpoint_optimizer(str(checkpoint)) is None
