"""Compiled decoder layers on a GPU (train/regional_compile.py): inductor's kernels train like the eager layers,
a checkpointed layer replays its compiled forward, and one compile serves every layer.

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_regional_compile_gpu.py -v -s
"""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from ftimg_jobs.train.checkpointing import checkpoint_layer, decoder_layers  # noqa: E402
from ftimg_jobs.train.regional_compile import compile_layers  # noqa: E402
from ftimg_jobs.train.toolchain import triton_toolchain_problem  # noqa: E402

SKIP = "needs a CUDA GPU" if not torch.cuda.is_available() else triton_toolchain_problem()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(SKIP is not None, reason=str(SKIP))]

LAYERS, LENGTH, STEPS = 6, 256, 3


def lora_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=LAYERS,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                                      attn_implementation="sdpa", use_cache=False)
    model = transformers.LlamaForCausalLM(config).to("cuda", torch.bfloat16).train()
    lora = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    return peft.get_peft_model(model, lora)


def train(model, batches) -> list:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for ids in batches:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_compiled_layers_train_like_eager_ones_and_share_one_compile():
    from torch._dynamo.utils import counters

    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 512, (2, LENGTH), generator=generator).cuda() for _ in range(STEPS)]
    eager, compiled = lora_llama(), lora_llama()
    torch._dynamo.reset()
    counters.clear()
    compile_layers(decoder_layers(compiled), compiled)  # as the jobs order it: compiled, then checkpointed
    for model in (eager, compiled):
        checkpoint_layer(decoder_layers(model)[0])
    expected = train(eager, batches)
    got = train(compiled, batches)
    print("eager", expected, "compiled", got, "graphs", counters["stats"]["unique_graphs"])
    for want, have in zip(expected, got):
        assert abs(have - want) <= 0.02 * abs(want)
    # SDPA traces into the graph: one graph for the layers whose input needs a gradient, a variant for the
    # first layer's (frozen embeddings under LoRA), perhaps one for the checkpointed layer: not one per layer.
    assert 0 < counters["stats"]["unique_graphs"] < LAYERS
