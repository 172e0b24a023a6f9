"""The partition-memory probe (benchmarks/partition_memory.py) on a tiny layer: what it counts moves with the
fraction, and the attention's share does not."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

import partition_memory  # noqa: E402
from ftimg_jobs.model import packed_attention  # noqa: E402
from ftimg_jobs.train import regional_compile  # noqa: E402

TINY_LAYER = {"hidden_size": 64, "intermediate_size": 172, "num_attention_heads": 4, "num_key_value_heads": 4}


def test_a_lower_fraction_keeps_fewer_bytes_in_the_graphs_and_the_same_in_attention():
    import torch._functorch.config as functorch_config

    original = regional_compile.EAGER_ATTENTION[packed_attention.NAME]
    fraction_before = functorch_config.activation_memory_budget
    try:
        full = partition_memory.saved_bytes(1.0, 32, TINY_LAYER)
        none = partition_memory.saved_bytes(0.0, 32, TINY_LAYER)
    finally:
        regional_compile.set_partition_fraction(fraction_before)
        torch._dynamo.reset()
    assert regional_compile.EAGER_ATTENTION[packed_attention.NAME] is original
    assert 0 < none["graphs"] < full["graphs"]
    # q, k, v and the output at least, in bf16, for one row of 32 tokens: the same whatever the graphs keep.
    assert none["attention"] == full["attention"] >= 4 * 32 * 64 * 2
