"""The automatic choice of how many decoder layers to checkpoint (torch-free)."""

from ftimg_jobs.train.layer_budget import (GIB, LayerPlan, ModelShape, StepMemory, allocator_reserve_bytes,
                                           describe_plan, layer_activation_bytes, layers_to_checkpoint,
                                           loss_workspace_bytes, plan_layers, step_peak_bytes, with_partition_fraction)

LLAMA_7B = ModelShape(num_layers=32, hidden_size=4096, intermediate_size=11008, vocab_size=32000)


def test_everything_fits_checkpoints_nothing():
    memory = StepMemory(fixed_bytes=10 * GIB, layer_bytes=GIB, checkpoint_bytes=GIB // 32)
    assert layers_to_checkpoint(32, 60 * GIB, memory) == 0


def test_checkpoints_the_fewest_layers_that_fit():
    memory = StepMemory(fixed_bytes=10 * GIB, layer_bytes=GIB, checkpoint_bytes=0)
    # n checkpointed: 10 + (32 - n) + 1 <= 30  ->  n >= 13
    assert layers_to_checkpoint(32, 30 * GIB, memory) == 13


def test_nothing_fits_checkpoints_every_layer():
    memory = StepMemory(fixed_bytes=100 * GIB, layer_bytes=GIB, checkpoint_bytes=0)
    assert layers_to_checkpoint(32, 24 * GIB, memory) == 32


def test_recomputing_a_layer_needs_room_for_its_activations():
    memory = StepMemory(fixed_bytes=0, layer_bytes=10, checkpoint_bytes=1)
    # One layer: keeping it needs 10; checkpointing it needs 1 + 10 (recompute) = 11.
    assert layers_to_checkpoint(1, 10, memory) == 0
    assert layers_to_checkpoint(1, 9, memory) == 1


def test_activations_grow_with_tokens_and_shrink_with_fused_kernels():
    plain = layer_activation_bytes(LLAMA_7B, 4096, lora_dropout=True, fused_mlp=False)
    assert layer_activation_bytes(LLAMA_7B, 8192, lora_dropout=True, fused_mlp=False) == 2 * plain
    assert layer_activation_bytes(LLAMA_7B, 4096, lora_dropout=True, fused_mlp=True) < plain
    assert layer_activation_bytes(LLAMA_7B, 4096, lora_dropout=False, fused_mlp=False) < plain


def test_seven_billion_layer_at_4k_tokens_is_about_a_gigabyte():
    size = layer_activation_bytes(LLAMA_7B, 4096, lora_dropout=True, fused_mlp=True)
    assert 0.5 * GIB < size < 1.5 * GIB


def test_fused_loss_never_materialises_the_logits():
    assert loss_workspace_bytes(LLAMA_7B, 4096, fused_loss=True) < loss_workspace_bytes(LLAMA_7B, 4096, False)


def test_reserve_is_at_least_a_gibibyte():
    assert allocator_reserve_bytes(8 * GIB) == GIB
    assert allocator_reserve_bytes(80 * GIB) == 4 * GIB


def test_lora_sized_gradients_leave_the_plan_to_the_activations():
    without = StepMemory(fixed_bytes=10 * GIB, layer_bytes=GIB, checkpoint_bytes=0)
    with_lora = StepMemory(fixed_bytes=10 * GIB, layer_bytes=GIB, checkpoint_bytes=0, layer_gradient_bytes=GIB // 1000)
    assert layers_to_checkpoint(32, 30 * GIB, with_lora) == layers_to_checkpoint(32, 30 * GIB, without) == 13
    assert step_peak_bytes(32, 13, with_lora) == step_peak_bytes(32, 13, without) == 30 * GIB


def test_full_fine_tuning_peaks_when_backward_ends_with_every_layers_gradients():
    """Gradients larger than activations: the peak is all gradients plus the first layer's activations, so
    every layer's activations fit where adding everything up would have checkpointed most of them."""
    memory = StepMemory(fixed_bytes=76 * GIB, layer_bytes=GIB // 2, checkpoint_bytes=0,
                        layer_gradient_bytes=3 * GIB // 4)
    assert step_peak_bytes(32, 0, memory) == 76 * GIB + 32 * (3 * GIB // 4) + GIB // 2
    assert layers_to_checkpoint(32, 101 * GIB, memory) == 0
    # All activations plus all gradients (the sum) would be 76 + 16 + 24 = 116 GiB.
    assert step_peak_bytes(32, 0, memory) < 101 * GIB


def test_checkpointing_cannot_shrink_the_gradient_peak_below_every_layers_gradients():
    memory = StepMemory(fixed_bytes=76 * GIB, layer_bytes=GIB // 2, checkpoint_bytes=GIB // 32,
                        layer_gradient_bytes=3 * GIB // 4)
    assert layers_to_checkpoint(32, 90 * GIB, memory) == 32  # 76 + 24 never fits 90: checkpoint everything
    assert step_peak_bytes(32, 32, memory) >= 76 * GIB + 32 * (3 * GIB // 4)


def test_accumulated_gradients_add_to_the_activations_at_backward_start():
    memory = StepMemory(fixed_bytes=76 * GIB, layer_bytes=GIB // 2, checkpoint_bytes=0,
                        layer_gradient_bytes=3 * GIB // 4)
    assert step_peak_bytes(32, 0, memory, accumulating=True) == 76 * GIB + 16 * GIB + 24 * GIB
    assert layers_to_checkpoint(32, 101 * GIB, memory, accumulating=False) == 0
    assert layers_to_checkpoint(32, 110 * GIB, memory, accumulating=True) == 13  # 76 + 24 + (32 - n)/2 + 1/2


def compiled_lora_7b(fixed_gib: float) -> StepMemory:
    """The measured LoRA case's estimate: 0.54 GiB a layer, of which the attention kernel keeps 4 hidden vectors."""
    layer = layer_activation_bytes(LLAMA_7B, 4096, lora_dropout=False, fused_mlp=True)
    return StepMemory(fixed_bytes=int(fixed_gib * GIB), layer_bytes=layer, checkpoint_bytes=4096 * 4096 * 2,
                      partitioned_bytes=layer - 4 * 4096 * 4096 * 2)


def test_eager_layers_are_planned_by_checkpointing_alone():
    memory = StepMemory(fixed_bytes=10 * GIB, layer_bytes=GIB, checkpoint_bytes=0)
    assert plan_layers(32, 30 * GIB, memory) == LayerPlan(13, 1.0)


def test_compiled_layers_with_room_keep_the_partitioners_default():
    assert plan_layers(32, 40 * GIB, compiled_lora_7b(14.5)) == LayerPlan(0, 1.0)


def test_lora_at_24_gib_lowers_the_fraction_only_as_far_as_it_must_instead_of_checkpointing():
    """The H200 case (docs/performance.md): 17 checkpointed layers before; now none, at the highest measured
    fraction that fits (0.5 would not)."""
    memory = compiled_lora_7b(14.5)
    budget = 24 * GIB
    assert layers_to_checkpoint(32, budget, memory) == 17
    plan = plan_layers(32, budget, memory)
    assert plan == LayerPlan(0, 0.3)
    assert step_peak_bytes(32, 0, with_partition_fraction(memory, 0.3)) <= budget
    assert step_peak_bytes(32, 0, with_partition_fraction(memory, 0.5)) > budget
    description = describe_plan(plan, 32, budget, memory)
    assert "keep 30% of the activations" in description and "estimated peak 22.5 GiB" in description


def test_where_most_layers_must_be_checkpointed_a_lower_fraction_is_not_worth_its_recompute():
    """QLoRA at 8 GiB: the lower fraction would spare few checkpointed layers and cost every layer a recompute."""
    plan = plan_layers(32, 8 * GIB, compiled_lora_7b(5.3))
    assert plan.partition_fraction == 1.0
    assert plan.checkpointed == layers_to_checkpoint(32, 8 * GIB, compiled_lora_7b(5.3))


def test_a_plan_always_fits_or_checkpoints_everything():
    memory = compiled_lora_7b(14.5)
    for budget_gib in (16, 18, 20, 22, 26, 30):
        plan = plan_layers(32, budget_gib * GIB, memory)
        assert step_peak_bytes(32, plan.checkpointed, with_partition_fraction(memory, plan.partition_fraction)) \
            <= budget_gib * GIB, budget_gib
    assert plan_layers(32, 10 * GIB, memory) == LayerPlan(32, 1.0)
