"""SDPA's cuDNN backend in real lora-sft training steps on the GPU (model/sdpa_backends.py).

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_sdpa_backends_gpu.py -v -s

The training job's own builder (train/builder.py) builds a LoRA model on unpacked rows of one fixed
length, with two decoder layers checkpointed so that backward recomputes attention; the Trainer runs
two steps under torch.profiler. Once with the builder's order (cuDNN first), once with cuDNN switched
off (TORCH_CUDNN_SDPA_DEPRIORITIZED=1 for the builder, flash held for the whole run): forward and
backward must run the cuDNN ops in the first run and the flash ops in the second, and the two
runs' losses must agree within 1%.
"""

import contextlib

import pytest
from gpu_jobs import save_small_llama

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

LENGTH, BATCH, STEPS = 512, 2, 2
CUDNN_OPS = ("aten::_scaled_dot_product_cudnn_attention", "aten::_scaled_dot_product_cudnn_attention_backward")
FLASH_OPS = ("aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_flash_attention_backward")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """Llama-shaped, 8 layers, 12 heads of 64 over 4 KV heads, random bf16 weights from seed 0."""
    from ftimg_jobs.model.sdpa_backends import choose_sdpa_priority, probe_machine
    from ftimg_jobs.model.tiny_model import build_tokenizer

    decision = choose_sdpa_priority("sdpa", probe_machine())
    if not decision["cudnn_first"]:
        pytest.skip(decision["reason"])
    path = save_small_llama(tmp_path_factory.mktemp("small-llama"), layers=8)
    return path, build_tokenizer().pad_token_id


def fixed_length_rows(vocab_size: int):
    from ftimg_jobs.data.collate import TokenizedDataset

    generator = torch.Generator().manual_seed(1)
    rows = torch.randint(3, vocab_size - 3, (BATCH * STEPS, LENGTH), generator=generator).tolist()
    return TokenizedDataset({"input_ids": row, "labels": row} for row in rows)


def train_two_steps(model_path, pad_token_id, output_dir, during_training) -> tuple:
    """``(losses per step, profiled op names, run.json-style speed notes)`` of STEPS lora-sft steps."""
    from ftimg_jobs.args.model import LoraArguments, ModelArguments
    from ftimg_jobs.args.speed import SpeedArguments
    from ftimg_jobs.data.collate import LeftPadCollator
    from ftimg_jobs.train.builder import CAUSAL_LM, build_collator, build_training_model

    training_args = transformers.TrainingArguments(
        output_dir=str(output_dir), max_steps=STEPS, per_device_train_batch_size=BATCH, learning_rate=2e-3,
        bf16=True, logging_steps=1, save_strategy="no", report_to="none", seed=0)
    speed_args = SpeedArguments(padding_free=False, gradient_checkpointing_layers=2)
    torch.manual_seed(0)  # the LoRA weights' initialisation
    # SDPA asked for by name: where FlashAttention-4 is installed it is the default, and SDPA's order is what is tested.
    model_args = ModelArguments(model_name_or_path=str(model_path), attn_implementation="sdpa")
    model, attention, notes = build_training_model(
        transformers.AutoModelForCausalLM, model_args, LoraArguments(),
        training_args, speed_args, task_type=CAUSAL_LM, tokens_per_step=BATCH * LENGTH)
    assert attention["implementation"] == "sdpa" and notes["gradient_checkpointing"]["layers"] == 2
    collator, _ = build_collator(LeftPadCollator(pad_token_id), speed_args, attention, training_args, notes)
    trainer = transformers.Trainer(model=model, args=training_args, data_collator=collator,
                                   train_dataset=fixed_length_rows(model.config.vocab_size))
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with during_training, torch.profiler.profile(activities=activities) as profile:
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses, {event.key for event in profile.key_averages()}, notes


def test_cudnn_runs_forward_and_backward_and_learns_what_flash_learns(small_model, tmp_path, monkeypatch):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from ftimg_jobs.model.sdpa_backends import DEPRIORITIZED_ENV, release_sdpa_priority

    model_path, pad_token_id = small_model
    try:
        cudnn_losses, cudnn_ops, cudnn_notes = train_two_steps(model_path, pad_token_id, tmp_path / "cudnn",
                                                               contextlib.nullcontext())
    finally:
        release_sdpa_priority()
    monkeypatch.setenv(DEPRIORITIZED_ENV, "1")
    flash_only = sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
    flash_losses, flash_ops, flash_notes = train_two_steps(model_path, pad_token_id, tmp_path / "flash", flash_only)
    print(f"\ncuDNN first: {cudnn_notes['sdpa_backends']}, losses {cudnn_losses}"
          f"\ncuDNN off: {flash_notes['sdpa_backends']}, losses {flash_losses}")

    assert cudnn_notes["sdpa_backends"]["cudnn_first"] is True
    assert cudnn_notes["sdpa_backends"]["order"][0] == "CUDNN_ATTENTION"
    assert all(op in cudnn_ops for op in CUDNN_OPS), sorted(op for op in cudnn_ops if "attention" in op)
    assert not any(op in cudnn_ops for op in FLASH_OPS)

    assert flash_notes["sdpa_backends"]["cudnn_first"] is False
    assert DEPRIORITIZED_ENV in flash_notes["sdpa_backends"]["reason"]
    assert all(op in flash_ops for op in FLASH_OPS), sorted(op for op in flash_ops if "attention" in op)
    assert not any(op in flash_ops for op in CUDNN_OPS)

    assert len(cudnn_losses) == len(flash_losses) == STEPS
    for cudnn_loss, flash_loss in zip(cudnn_losses, flash_losses):
        assert abs(cudnn_loss - flash_loss) <= 0.01 * abs(flash_loss), (cudnn_losses, flash_losses)
