"""The step's memory estimate from a real model's shape (the Llama-2-7B shape on the meta device: no memory
used): layer gradients counted apart, and the layers each optimizer would need checkpointed."""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ftimg_jobs.args.speed import AUTO_LAYERS  # noqa: E402
from ftimg_jobs.train.checkpointing import layers_needed, model_shape, step_memory  # noqa: E402
from ftimg_jobs.train.layer_budget import GIB, step_peak_bytes  # noqa: E402

TOKENS = 4096
FP32, EIGHT_BIT = "adamw_torch_fused", "paged_adamw_8bit"


@pytest.fixture(scope="module")
def llama_7b():
    config = transformers.LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=32, vocab_size=32000)
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config)  # fp32 weights, all trainable: full fine-tuning


def speed(budget_gib, layers=AUTO_LAYERS):
    return SimpleNamespace(gpu_memory_budget_gib=budget_gib, gradient_checkpointing_layers=layers)


def training(accumulation=1, checkpoint_all=False):
    return SimpleNamespace(deepspeed=None, gradient_checkpointing=checkpoint_all,
                           gradient_accumulation_steps=accumulation)


def test_full_fine_tuning_counts_each_layers_gradients_apart(llama_7b):
    memory = step_memory(llama_7b, model_shape(llama_7b.config), TOKENS, 126 * GIB, optim=FP32, fused_loss=True,
                         lora_dropout=False, fused_mlp=True)
    layer_parameters = sum(p.numel() for p in llama_7b.model.layers[0].parameters())
    assert memory.layer_gradient_bytes == layer_parameters * 4  # fp32 gradients of fp32 weights
    everything = memory.fixed_bytes + 32 * (memory.layer_gradient_bytes + memory.layer_bytes)
    assert memory.fixed_bytes < step_peak_bytes(32, 0, memory) < everything


def test_on_an_h200_fp32_adamw_needs_no_checkpointing(llama_7b):
    """The measured case (docs/performance.md): 125.8 GiB, nothing checkpointed, either optimizer."""
    assert layers_needed(llama_7b, speed(125.8), training(), TOKENS, FP32) == 0
    assert layers_needed(llama_7b, speed(125.8), training(), TOKENS, EIGHT_BIT) == 0


def test_a_smaller_budget_fits_only_the_eight_bit_state(llama_7b):
    assert layers_needed(llama_7b, speed(100), training(), TOKENS, FP32) is None
    assert layers_needed(llama_7b, speed(100), training(), TOKENS, EIGHT_BIT) == 0


def test_accumulated_gradients_stay_while_the_next_micro_batch_holds_its_activations(llama_7b):
    alone = layers_needed(llama_7b, speed(125.8), training(accumulation=1), TOKENS, FP32)
    accumulating = layers_needed(llama_7b, speed(125.8), training(accumulation=4), TOKENS, FP32)
    assert alone == 0 and accumulating is not None and accumulating > 10


def test_data_parallel_buckets_count_every_gradient_once_more(llama_7b, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert layers_needed(llama_7b, speed(125.8), training(), TOKENS, FP32) is None
    assert layers_needed(llama_7b, speed(125.8), training(), TOKENS, EIGHT_BIT) == 0
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert layers_needed(llama_7b, speed(125.8), training(), TOKENS, FP32) == 0


def test_the_users_own_checkpointing_is_what_must_fit(llama_7b):
    assert layers_needed(llama_7b, speed(125.8, layers=5), training(), TOKENS, FP32) == 5
    assert layers_needed(llama_7b, speed(125.8), training(checkpoint_all=True), TOKENS, FP32) == 32
    assert layers_needed(llama_7b, speed(100, layers=5), training(), TOKENS, FP32) is None


def test_frozen_layers_have_no_gradients_to_count(llama_7b):
    for parameter in llama_7b.model.layers.parameters():
        parameter.requires_grad_(False)
    try:
        memory = step_memory(llama_7b, model_shape(llama_7b.config), TOKENS, 126 * GIB, optim=FP32,
                             fused_loss=True, lora_dropout=False, fused_mlp=True)
        assert memory.layer_gradient_bytes == 0
    finally:
        for parameter in llama_7b.model.layers.parameters():
            parameter.requires_grad_(True)


def test_compiled_layers_leave_the_attention_kernels_tensors_out_of_what_the_partitioner_may_recompute(llama_7b):
    args = dict(optim=FP32, fused_loss=True, lora_dropout=False, fused_mlp=True)
    eager = step_memory(llama_7b, model_shape(llama_7b.config), TOKENS, 126 * GIB, **args)
    compiled = step_memory(llama_7b, model_shape(llama_7b.config), TOKENS, 126 * GIB, compiled=True, **args)
    assert eager.partitioned_bytes == 0
    assert compiled.layer_bytes == eager.layer_bytes
    assert compiled.partitioned_bytes == compiled.layer_bytes - 4 * TOKENS * 4096 * 2  # q, k, v, output in bf16
