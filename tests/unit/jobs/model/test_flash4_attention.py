"""FlashAttention-4's registration with transformers, and every path that does not reach its kernels.

Runs where torch and transformers 4.53+ are installed (skipped on the image's 4.46 and without
torch). On a CPU the kernels never run: each call takes a fallback, and a model switched to
FlashAttention-4 must compute what plain SDPA computes. tests/gpu/test_flash4_gpu.py runs the kernels.
"""

import importlib.metadata

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("transformers.masking_utils")

from ftimg_jobs.model import flash4_attention  # noqa: E402
from ftimg_jobs.model.flash4_attention import NAME, flash4_mask, model_problem, register  # noqa: E402

LENGTHS = [5, 9, 3]


def tiny_llama(**overrides):
    config = transformers.LlamaConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=128, max_position_embeddings=64,
                                      **overrides)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def switched(model):
    """The same weights, attention switched the way use_flash4_attention does (it also checks the GPU)."""
    import copy

    other = copy.deepcopy(model)
    register()
    other.config._attn_implementation = NAME
    return other


def test_without_the_package_the_probe_says_so():
    try:
        importlib.metadata.version("flash-attn-4")
        pytest.skip("flash-attn-4 is installed here")
    except importlib.metadata.PackageNotFoundError:
        pass
    problem = flash4_attention.flash4_problem(gpu_could_run_it=False)
    assert "the flash-attn-4 package is not installed" in problem


@pytest.fixture
def fallback_calls(monkeypatch):
    """Counts the calls that reach the CPU fallback of flash4_attention (the real function still runs)."""
    calls = []
    real = flash4_attention.packed_causal_attention

    def counting(*args, **kwargs):
        calls.append(args[1].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(flash4_attention, "packed_causal_attention", counting)
    return calls


def test_fixed_length_rows_match_sdpa(fallback_calls):
    model = tiny_llama()
    ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(switched(model)(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)
    assert len(fallback_calls) == model.config.num_hidden_layers  # the switched model ran flash4_attention


def test_padded_batch_keeps_its_mask(fallback_calls):
    """Left padding, as inference pads: the fixed-length kernel would attend to the pads; SDPA with the mask runs it."""
    model = tiny_llama()
    ids = torch.randint(1, 100, (2, 10), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
        got = switched(model)(input_ids=ids, attention_mask=mask).logits
        unmasked = switched(model)(input_ids=ids).logits
    assert torch.allclose(got[:, 4:], expected[:, 4:], atol=1e-5)
    assert (unmasked[0, 4:] - expected[0, 4:]).abs().max() > 1e-2  # the mask matters: the check can fail
    assert len(fallback_calls) == model.config.num_hidden_layers  # only the unmasked pass: mask calls go to SDPA


def test_padding_free_row_attends_within_each_example(fallback_calls):
    model = tiny_llama()
    generator = torch.Generator().manual_seed(3)
    examples = [torch.randint(0, 100, (n,), generator=generator) for n in LENGTHS]
    row = torch.cat(examples)[None]
    positions = torch.tensor([[p for n in LENGTHS for p in range(n)]])
    with torch.no_grad():
        alone = torch.cat([model(input_ids=ids[None]).logits[0] for ids in examples])
        packed = switched(model)(input_ids=row, position_ids=positions).logits[0]
    assert torch.allclose(packed, alone, atol=1e-5)
    assert fallback_calls == [(1, 4, sum(LENGTHS), 16)] * model.config.num_hidden_layers


def test_greedy_generation_with_left_padding_matches_sdpa():
    """Prefill with a mask, then one query against a growing cache: both go to SDPA."""
    model = tiny_llama()
    ids = torch.randint(1, 100, (2, 7), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    settings = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        assert torch.equal(switched(model).generate(ids, **settings), model.generate(ids, **settings))


def test_mask_is_skipped_only_where_flash4_runs_the_call():
    causal = dict(batch_size=2, q_length=6, kv_length=6)
    assert flash4_mask(**causal) is None
    assert flash4_mask(**causal, attention_mask=torch.ones(2, 6, dtype=torch.bool)) is None
    padded = torch.ones(2, 6, dtype=torch.bool)
    padded[0, 0] = False
    mask = flash4_mask(**causal, attention_mask=padded)
    assert mask.shape == (2, 1, 6, 6) and not mask[0, 0, 1:, 0].any()
    assert torch.equal(mask[1, 0], torch.ones(6, 6, dtype=torch.bool).tril())
    # Several packed rows (transformers cleared the causal skip): SDPA's mask. One such row: varlen.
    assert flash4_mask(**causal, allow_is_causal_skip=False) is not None
    assert flash4_mask(batch_size=1, q_length=6, kv_length=6, allow_is_causal_skip=False) is None
    # Queries against a cache: SDPA's mask, or none where SDPA itself skips it.
    assert flash4_mask(batch_size=2, q_length=3, kv_length=9, q_offset=6) is not None


def test_models_it_cannot_run_are_refused_with_the_reason():
    assert model_problem(transformers.LlamaConfig(), (9, 0)) is None
    assert "sliding-window" in model_problem(transformers.MistralConfig(sliding_window=4096), (9, 0))
    assert "attention_dropout" in model_problem(transformers.LlamaConfig(attention_dropout=0.1), (9, 0))
    head_192 = transformers.LlamaConfig(hidden_size=3072, num_attention_heads=16)
    assert model_problem(head_192, (9, 0)) is None and "head size 192" in model_problem(head_192, (10, 0))


def test_float32_outside_autocast_stays_off_the_kernels():
    query = torch.randn(1, 4, 8, 16)
    assert flash4_attention.compute_dtype(query) is None
    assert flash4_attention.compute_dtype(query.bfloat16()) == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert flash4_attention.compute_dtype(query) == torch.bfloat16


@pytest.fixture
def hopper_with_both_packages(monkeypatch):
    """What select_attention probes on an H100/H200 whose image has flash-attn-4 and flash-attn 2."""
    from ftimg_jobs.model import load

    monkeypatch.setattr(load.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(load.torch.cuda, "get_device_capability", lambda *_: (9, 0))
    monkeypatch.setattr(load, "flash4_problem", lambda gpu_could_run_it: None)
    installed = {"flash-attn": True}
    monkeypatch.setattr(load, "distribution_installed", lambda name: installed[name])
    return load, installed


def model_args(path, requested="auto"):
    from types import SimpleNamespace

    return SimpleNamespace(model_name_or_path=str(path), trust_remote_code=False, attn_implementation=requested,
                           flash_attn=False)


def test_a_model_flash4_refuses_takes_flash_attn_2_where_installed(hopper_with_both_packages, tmp_path):
    load, installed = hopper_with_both_packages
    transformers.MistralConfig(sliding_window=4096).save_pretrained(tmp_path / "mistral")
    transformers.LlamaConfig().save_pretrained(tmp_path / "llama")
    llama = load.select_attention(model_args(tmp_path / "llama"), torch.bfloat16)
    assert llama["implementation"] == "flash_attention_4"
    chosen = load.select_attention(model_args(tmp_path / "mistral"), torch.bfloat16)
    assert chosen["implementation"] == "flash_attention_2" and "sliding-window" in chosen["reason"]
    installed["flash-attn"] = False
    chosen = load.select_attention(model_args(tmp_path / "mistral"), torch.bfloat16)
    assert chosen["implementation"] == "sdpa" and "sliding-window" in chosen["reason"]
    from ftimg_jobs.errors import JobError

    with pytest.raises(JobError, match="--attn_implementation flash_attention_4: .*sliding-window"):
        load.select_attention(model_args(tmp_path / "mistral", "flash_attention_4"), torch.bfloat16)
