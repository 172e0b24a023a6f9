"""The static engine's decode attention choices (generate/decode_attention.py), on a CPU.

"flash4" here runs its CPU reference (SDPA under a mask made from the column counts the step passes),
which checks what the captured step hands attention; "flex" needs torch 2.6+. Skipped on the image's
transformers 4. tests/gpu/test_infer_engine_gpu.py runs both kernels through CUDA graphs.
"""

import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip("the static engine needs transformers 5", allow_module_level=True)

from ftimg_jobs.generate.decode_attention import KV_BLOCK, SlotBlocks, choose_decode_attention, flex_problem  # noqa: E402,E501
from ftimg_jobs.model import flash4_attention  # noqa: E402
from ftimg_jobs.generate.sampling import SamplingSettings  # noqa: E402
from ftimg_jobs.generate.static_engine import EngineSettings, StaticEngine  # noqa: E402


def tiny_llama():
    config = transformers.LlamaConfig(vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                                      bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)  # logits far apart: two correct decoders pick the same tokens
    return model


MODEL = tiny_llama()
needs_flex = pytest.mark.skipif(flex_problem(MODEL) is not None, reason=str(flex_problem(MODEL)))
PROMPTS = {i: [1] + [random.Random(i).randrange(3, 256) for _ in range(random.Random(-i).randint(3, 60))]
           for i in range(12)}


def decode(model, mode, prompts=PROMPTS, **settings):
    outputs = {}
    engine = StaticEngine(model, EngineSettings(max_new_tokens=16, sampling=SamplingSettings(),
                                                eos_token_ids=frozenset(), pad_token_id=0, decode_attention=mode,
                                                **settings), torch.device("cpu"))
    engine.generate(prompts, lambda done: outputs.update({f.record_id: f.token_ids for f in done}))
    return outputs, engine


def flash4_model():
    flash4_attention.register()
    model = tiny_llama()
    model.config._attn_implementation = flash4_attention.NAME
    return model


def test_flash4_decode_reads_the_column_counts_the_step_passes_and_gives_the_masked_decodes_tokens(monkeypatch):
    model = flash4_model()
    masked, _ = decode(MODEL, "mask", max_slots=8)  # 8 rows for 12 prompts: refills and a smaller graph
    seen = []
    reference = flash4_attention.flash4_slot_decode

    def spy(module, query, key, value, lengths, scaling):
        seen.append((lengths.dtype, lengths.tolist(), key.shape[2]))
        return reference(module, query, key, value, lengths, scaling)

    monkeypatch.setattr(flash4_attention, "flash4_slot_decode", spy)
    outputs, engine = decode(model, "flash4", max_slots=8)
    assert engine.decode_attention == "flash4"
    assert outputs == masked
    assert seen and all(dtype == torch.int32 for dtype, _, _ in seen)
    # Each row sees its prompt plus the tokens generated so far, never past the cache (a slot not
    # filled yet sees its one column).
    assert all(1 <= count <= columns for _, counts, columns in seen for count in counts)
    first_step = seen[0][1]
    longest_first = sorted(PROMPTS.values(), key=len, reverse=True)[:len(first_step)]
    assert sorted(first_step) == sorted(len(ids) + 1 for ids in longest_first)  # prompt + its first token


def test_auto_takes_flash4_only_on_a_gpu_and_the_mask_otherwise():
    model = flash4_model()
    assert choose_decode_attention("auto", model, torch.device("cuda", 0)) == "flash4"
    assert choose_decode_attention("auto", model, torch.device("cpu")) == "mask"
    assert choose_decode_attention("auto", MODEL, torch.device("cuda", 0)) == "mask"
    with pytest.raises(ValueError, match="'flash4' needs a model running ftimg_flash_attention_4.*runs 'sdpa'"):
        choose_decode_attention("flash4", MODEL, torch.device("cuda", 0))


@needs_flex
def test_each_row_reads_the_blocks_up_to_its_own_position():
    positions = torch.tensor([0, KV_BLOCK - 1, KV_BLOCK, 3 * KV_BLOCK + 5])
    blocks = SlotBlocks(positions, cache_length=4 * KV_BLOCK)
    mask = blocks.mask()
    assert mask.kv_num_blocks.flatten().tolist() == [1, 1, 2, 4]
    column = torch.tensor
    assert mask.mask_mod(column(1), 0, 0, column(KV_BLOCK - 1)) and not mask.mask_mod(column(1), 0, 0, column(KV_BLOCK))
    positions.add_(KV_BLOCK)  # the graph's positions advance in place: the next mask follows them
    assert blocks.mask().kv_num_blocks.flatten().tolist() == [2, 2, 3, 5]
    with pytest.raises(ValueError, match="not a multiple of 64"):
        SlotBlocks(torch.zeros(1, dtype=torch.long), cache_length=100)


@needs_flex
@pytest.mark.slow
def test_flex_decode_gives_the_masked_decodes_tokens():
    """One compile of flex_attention on a CPU (about half a minute on two cores)."""
    masked, _ = decode(MODEL, "mask")
    assert decode(MODEL, "flex")[0] == masked
    assert MODEL.config._attn_implementation == "sdpa"  # switched back


@needs_flex
def test_unknown_mode_and_unregistered_prefill_attention_are_refused():
    settings = dict(max_new_tokens=4, sampling=SamplingSettings(), eos_token_ids=frozenset(), pad_token_id=0)
    with pytest.raises(ValueError, match="'paged' is not one of auto, mask, flash4, flex"):
        StaticEngine(MODEL, EngineSettings(**settings, decode_attention="paged"), torch.device("cpu"))
    eager = tiny_llama()
    eager.config._attn_implementation = "eager"
    with pytest.raises(ValueError, match="'eager' attention, which is not in transformers' registry"):
        StaticEngine(eager, EngineSettings(**settings, decode_attention="flex"), torch.device("cpu"))
