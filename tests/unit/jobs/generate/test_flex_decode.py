"""Decode attention that reads only each slot's own cache columns (generate/decode_attention.py), on a CPU.

Runs where torch has FlexAttention with BlockMask.from_kv_blocks(compute_q_blocks=...) (2.6+) and transformers 5
(skipped on the image's torch 2.1). tests/gpu/test_infer_engine_gpu.py runs it through CUDA graphs.
"""

import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip("the static engine needs transformers 5", allow_module_level=True)

from ftimg_jobs.generate.decode_attention import KV_BLOCK, SlotBlocks, flex_problem  # noqa: E402
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
pytestmark = pytest.mark.skipif(flex_problem(MODEL) is not None, reason=str(flex_problem(MODEL)))


def test_each_row_reads_the_blocks_up_to_its_own_position():
    positions = torch.tensor([0, KV_BLOCK - 1, KV_BLOCK, 3 * KV_BLOCK + 5])
    blocks = SlotBlocks(torch.zeros(4, dtype=torch.long), positions, cache_length=4 * KV_BLOCK)
    mask = blocks.mask()
    assert mask.kv_num_blocks.flatten().tolist() == [1, 1, 2, 4]
    column = torch.tensor
    assert mask.mask_mod(column(1), 0, 0, column(KV_BLOCK - 1)) and not mask.mask_mod(column(1), 0, 0, column(KV_BLOCK))
    positions.add_(KV_BLOCK)  # the graph's positions advance in place: the next mask follows them
    assert blocks.mask().kv_num_blocks.flatten().tolist() == [2, 2, 3, 5]
    with pytest.raises(ValueError, match="not a multiple of 64"):
        SlotBlocks(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long), cache_length=100)


@pytest.mark.slow
def test_flex_decode_gives_the_masked_decodes_tokens():
    """One compile of flex_attention on a CPU (about half a minute on two cores)."""
    rng = random.Random(0)
    prompts = {i: [1] + [rng.randrange(3, 256) for _ in range(rng.randint(3, 60))] for i in range(12)}

    def run(mode):
        outputs = {}
        engine = StaticEngine(MODEL, EngineSettings(max_new_tokens=16, sampling=SamplingSettings(),
                                                    eos_token_ids=frozenset(), pad_token_id=0, decode_attention=mode),
                              torch.device("cpu"))
        engine.generate(prompts, lambda done: outputs.update({f.record_id: f.token_ids for f in done}))
        return outputs

    masked = run("mask")
    assert run("flex") == masked
    assert MODEL.config._attn_implementation == "sdpa"  # switched back


def test_unknown_mode_and_unregistered_prefill_attention_are_refused():
    settings = dict(max_new_tokens=4, sampling=SamplingSettings(), eos_token_ids=frozenset(), pad_token_id=0)
    with pytest.raises(ValueError, match="not 'mask' or 'flex'"):
        StaticEngine(MODEL, EngineSettings(**settings, decode_attention="paged"), torch.device("cpu"))
    eager = tiny_llama()
    eager.config._attn_implementation = "eager"
    with pytest.raises(ValueError, match="'eager' attention, which is not in transformers' registry"):
        StaticEngine(eager, EngineSettings(**settings, decode_attention="flex"), torch.device("cpu"))
