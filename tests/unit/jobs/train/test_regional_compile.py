"""Regional compilation of the decoder layers (train/regional_compile.py), on CPU with a tracing backend."""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ftimg_jobs.model import packed_attention  # noqa: E402
from ftimg_jobs.train import regional_compile  # noqa: E402
from ftimg_jobs.train.checkpointing import checkpoint_layer, decoder_layers  # noqa: E402


def tiny_llama(seed: int = 0, layers: int = 3):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=97,
                                      attn_implementation="sdpa", use_cache=False)  # as the jobs train
    return transformers.LlamaForCausalLM(config).train()


def loss_and_grads(model, ids, position_ids=None):
    out = model(input_ids=ids, labels=ids, position_ids=position_ids)
    out.loss.backward()
    return out.loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test starts with no compiled graphs and counters, and leaves dynamo's settings as it found them."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()  # what compile_outcome reads
    saved = torch._dynamo.config.suppress_errors
    yield
    torch._dynamo.config.suppress_errors = saved
    torch._dynamo.reset()


@pytest.mark.parametrize("checkpointed", [0, 2])
def test_compiled_layers_train_like_the_eager_ones(checkpointed):
    """Same loss and gradients; the compiled forward is what a checkpoint wrapper replays; the layers share graphs."""
    ids = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(1))
    eager = tiny_llama()
    compiled = tiny_llama()
    regional_compile.compile_layers(decoder_layers(compiled), compiled, backend="aot_eager")
    for layer in decoder_layers(compiled)[:checkpointed]:
        checkpoint_layer(layer)
    expected_loss, expected = loss_and_grads(eager, ids)
    loss, grads = loss_and_grads(compiled, ids)
    torch.testing.assert_close(loss, expected_loss)
    assert grads.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(grads[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)
    # SDPA traces into the graph: one graph serves the three layers (a wrapper that compiled nothing would
    # leave none, one compile per layer three).
    assert regional_compile.compile_outcome()["graphs"] == 1


def packed_row_graphs(monkeypatch, layers: int) -> tuple:
    """Train one padding-free row through compiled layers; ``(graphs made, attention calls' compiling flags)``."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = tiny_llama(layers=layers)
    assert packed_attention.use_packed_attention(model)
    calls = []

    def watched(*args, **kwargs):
        calls.append(torch.compiler.is_compiling())
        return packed_attention.packed_causal_attention(*args, **kwargs)

    monkeypatch.setitem(regional_compile.EAGER_ATTENTION, packed_attention.NAME, watched)
    try:
        regional_compile.compile_layers(decoder_layers(model), model, backend="aot_eager")
        ids = torch.randint(0, 97, (1, 20), generator=torch.Generator().manual_seed(2))
        position_ids = torch.tensor([list(range(12)) + list(range(8))])
        loss, _ = loss_and_grads(model, ids, position_ids)
    finally:
        packed_attention.use_packed_attention(model)  # the plain function registered again for later tests
    assert torch.isfinite(loss)
    return regional_compile.compile_outcome()["graphs"], calls


def test_the_jobs_attention_stays_out_of_the_graph_and_the_layers_share_theirs(monkeypatch):
    """A padding-free row's per-example attention runs eagerly between graphs that every layer reuses."""
    one_layer, _ = packed_row_graphs(monkeypatch, layers=1)
    three_layers, calls = packed_row_graphs(monkeypatch, layers=3)
    assert len(calls) == 3 and not any(calls)
    assert one_layer >= 2 and three_layers == one_layer  # graphs before and after the attention call, once


def flags(value):
    return SimpleNamespace(compile_layers=value)


def test_unset_compiles_only_the_measured_jobs(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(regional_compile, "triton_toolchain_problem", lambda: None)
    for measured in (regional_compile.measured_default(True, None, "llama"),):  # LoRA, QLoRA and full sft
        assert measured is None
        assert regional_compile.compile_unavailable_reason(flags(None), measured) is None
    for off in (regional_compile.measured_default(False, None, "llama"),  # cls
                regional_compile.measured_default(True, "zero2", "llama"),
                regional_compile.measured_default(True, None, "qwen2_moe")):
        assert "off by default" in off and "--compile_layers True" in off
        assert regional_compile.compile_unavailable_reason(flags(None), off) == off
        assert regional_compile.compile_unavailable_reason(flags(True), off) is None
    assert "cls" in regional_compile.measured_default(False, None, "llama")
    assert "DeepSpeed" in regional_compile.measured_default(True, "zero2", "llama")
    assert "'qwen2_moe'" in regional_compile.measured_default(True, None, "qwen2_moe")
    assert regional_compile.compile_unavailable_reason(flags(False), measured) == "--compile_layers False"


def test_no_compile_without_what_it_needs(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert regional_compile.compile_unavailable_reason(flags(True), None) == "no GPU: the CPU keeps the eager layers"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch, "__version__", "2.1.2+cu121")
    assert "needs torch 2.5+" in regional_compile.compile_unavailable_reason(flags(True), None)
    monkeypatch.setattr(torch, "__version__", "2.11.0+cu130")
    monkeypatch.setattr(regional_compile, "triton_toolchain_problem", lambda: "no C compiler")
    assert regional_compile.compile_unavailable_reason(flags(None), None) == "no C compiler"


def test_a_reason_leaves_the_layers_eager():
    model = tiny_llama()
    layers = decoder_layers(model)
    forwards = [layer.forward for layer in layers]
    note = regional_compile.apply_regional_compile(model, layers, "--compile_layers False")
    assert note == {"applied": False, "reason": "--compile_layers False"}
    assert [layer.forward for layer in layers] == forwards


def failing_backend(graph_module, example_inputs):
    raise RuntimeError("this backend cannot compile anything")


def test_by_default_a_layer_that_fails_to_compile_trains_eagerly():
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(3))
    eager, compiled = tiny_llama(), tiny_llama()
    regional_compile.compile_layers(decoder_layers(compiled), compiled, backend=failing_backend,
                                    fall_back_to_eager=True)
    expected_loss, _ = loss_and_grads(eager, ids)
    loss, _ = loss_and_grads(compiled, ids)
    torch.testing.assert_close(loss, expected_loss)
    outcome = regional_compile.compile_outcome()  # what run.json reports: frames tried, no graph made
    assert outcome["frames"] > 0 and outcome["graphs"] == 0


def test_an_explicit_request_after_a_default_one_lets_the_compile_error_through():
    """Two jobs in one process: the first (default) one's fallback does not hide the second one's error."""
    first = tiny_llama()
    regional_compile.compile_layers(decoder_layers(first), first, backend="aot_eager", fall_back_to_eager=True)
    model = tiny_llama()
    regional_compile.compile_layers(decoder_layers(model), model, backend=failing_backend)
    with pytest.raises(Exception, match="cannot compile anything"):
        loss_and_grads(model, torch.randint(0, 97, (2, 16)))


def saved_bytes_and_grads(fraction: float) -> tuple:
    """Train one step of compiled layers whose partitioner keeps ``fraction`` of its activations; returns
    ``(bytes the layers' graphs saved for backward, loss, gradients)``."""
    torch._dynamo.reset()
    regional_compile.set_partition_fraction(fraction)
    model = tiny_llama(layers=2)
    # The min-cut partitioner, as inductor uses it, without needing a C++ compiler.
    regional_compile.compile_layers(decoder_layers(model), model, backend="aot_eager_decomp_partition")
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    ids = torch.randint(0, 97, (2, 64), generator=torch.Generator().manual_seed(3))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss, grads = loss_and_grads(model, ids)
    return sum(saved), loss, grads


def test_a_lower_partition_fraction_saves_less_and_trains_the_same():
    import torch._functorch.config as functorch_config

    default = functorch_config.activation_memory_budget
    try:
        full_bytes, full_loss, full_grads = saved_bytes_and_grads(1.0)
        lean_bytes, lean_loss, lean_grads = saved_bytes_and_grads(0.1)
        assert functorch_config.activation_memory_budget == 0.1
    finally:
        regional_compile.set_partition_fraction(default)
    assert lean_bytes < full_bytes
    torch.testing.assert_close(lean_loss, full_loss)
    for name in full_grads:
        torch.testing.assert_close(lean_grads[name], full_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_run_whose_layers_all_fell_back_to_eager_is_warned_once_after_its_first_step(caplog):
    from torch._dynamo.utils import counters

    plan = {"layers": 0, "of": 32, "partition_fraction": 0.3}
    notes = {"compile": {"applied": True}, "gradient_checkpointing": plan}
    (check,) = regional_compile.compile_checks(notes)
    counters.clear()  # no graph made: every layer ran eagerly
    with caplog.at_level("WARNING", logger="ftimg_jobs"):
        check.on_step_end(None, None, None)
        check.on_step_end(None, None, None)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "partition fraction 0.3" in warnings[0] and "--compile_layers False" in warnings[0]


def test_compiled_layers_raise_no_fallback_warning_and_eager_jobs_get_no_check(caplog):
    model = tiny_llama(layers=1)
    regional_compile.compile_layers(decoder_layers(model), model, backend="aot_eager")
    loss_and_grads(model, torch.randint(0, 97, (1, 8), generator=torch.Generator().manual_seed(4)))
    (check,) = regional_compile.compile_checks({"compile": {"applied": True}, "gradient_checkpointing": {}})
    with caplog.at_level("WARNING", logger="ftimg_jobs"):
        check.on_step_end(None, None, None)
    assert not [record for record in caplog.records if record.levelname == "WARNING"]
    assert regional_compile.compile_checks({"compile": {"applied": False}}) == []
