"""The step's memory estimate taken from a real (small) model: layer gradients counted apart from the rest."""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ftimg_jobs.train.checkpointing import (fits_with_every_layer_checkpointed, model_shape,  # noqa: E402
                                            step_memory)
from ftimg_jobs.train.layer_budget import GIB, step_peak_bytes  # noqa: E402


@pytest.fixture(scope="module")
def model():
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                      num_attention_heads=4, num_key_value_heads=4, vocab_size=256)
    return transformers.LlamaForCausalLM(config)


def test_full_fine_tuning_counts_each_layers_gradients_apart(model):
    memory = step_memory(model, model_shape(model.config), tokens=512, budget_bytes=GIB, optim="adamw_torch_fused",
                         fused_loss=False, lora_dropout=False, fused_mlp=False)
    layer_parameters = sum(p.numel() for p in model.model.layers[0].parameters())
    assert memory.layer_gradient_bytes == layer_parameters * 4  # fp32 weights, fp32 gradients
    peak = step_peak_bytes(3, 0, memory)
    everything = memory.fixed_bytes + 3 * memory.layer_gradient_bytes + 3 * memory.layer_bytes
    assert memory.fixed_bytes < peak < everything


def test_frozen_layers_have_no_gradients_to_count(model):
    for parameter in model.model.layers.parameters():
        parameter.requires_grad_(False)
    try:
        memory = step_memory(model, model_shape(model.config), tokens=512, budget_bytes=GIB, optim="adamw_torch",
                             fused_loss=False, lora_dropout=False, fused_mlp=False)
        assert memory.layer_gradient_bytes == 0
    finally:
        for parameter in model.model.layers.parameters():
            parameter.requires_grad_(True)


def test_fp32_adamw_fits_a_large_budget_and_not_a_tiny_one(model):
    weights_mib = sum(p.numel() * 4 for p in model.parameters()) / 2 ** 20
    roomy, cramped = SimpleNamespace(gpu_memory_budget_gib=2.0), SimpleNamespace(gpu_memory_budget_gib=weights_mib / 1024)
    assert fits_with_every_layer_checkpointed(model, roomy, 512, "adamw_torch_fused")
    assert not fits_with_every_layer_checkpointed(model, cramped, 512, "adamw_torch_fused")
