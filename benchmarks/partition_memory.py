"""What one compiled LoRA decoder layer keeps for backward at each partition fraction (torch's activation memory
budget), counted on the CPU from the real layer's code: the calibration behind train/layer_budget.py.

    PYTHONPATH=entrypoints python benchmarks/partition_memory.py --tokens 256 --fractions 1.0,0.5,0.4,0.3

Builds a 2-layer model of the Llama-2-7B layer shape (hidden 4096, MLP 11008, 32 heads) in bf16 with LoRA r=8 on
all seven linears, dropout 0, as the sft jobs train it; its attention runs eagerly between the layer's two graphs,
as FlashAttention-4 does in the jobs. Each fraction compiles the layers afresh with the min-cut partitioner
(the one inductor uses; here without code generation, so no GPU or C compiler is needed) and trains one step under
saved-tensor hooks. It prints, per fraction, the bytes the second layer's graphs saved and those its attention
saved, scaled to --scale-to tokens. The partitioner's choice depends on the graph and the fraction, not on the
device, so the levels seen here are the GPU's; what each costs in time is measured on a GPU (speed_benchmark.py).
"""

import argparse
import json

import torch

from ftimg_jobs.model import packed_attention
from ftimg_jobs.train import regional_compile
from ftimg_jobs.train.checkpointing import decoder_layers

MIB = 1024 ** 2
LLAMA2_7B_LAYER = {"hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
                   "num_key_value_heads": 32}


def lora_model(layers: int, shape: dict):
    import peft
    import transformers

    config = transformers.LlamaConfig(**shape, num_hidden_layers=layers, vocab_size=512,
                                      attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).to(torch.bfloat16).train()
    packed_attention.use_packed_attention(model)  # eager between the graphs, like the jobs' FlashAttention-4
    lora = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    return peft.get_peft_model(model, lora)


def saved_bytes(fraction: float, tokens: int, shape: dict = LLAMA2_7B_LAYER) -> dict:
    """One training step at ``fraction``: bytes saved for backward inside the second decoder layer, split into
    the attention function's and the compiled graphs'."""
    torch._dynamo.reset()
    regional_compile.set_partition_fraction(fraction)
    model = lora_model(layers=2, shape=shape)
    watched = decoder_layers(model)[1]
    where = {"layer": False, "attention": False}
    counted = {"graphs": 0, "attention": 0}

    def attention(*args, **kwargs):
        where["attention"] = True
        try:
            return packed_attention.packed_causal_attention(*args, **kwargs)
        finally:
            where["attention"] = False

    original = regional_compile.EAGER_ATTENTION[packed_attention.NAME]
    regional_compile.EAGER_ATTENTION[packed_attention.NAME] = attention
    try:
        regional_compile.compile_layers(decoder_layers(model), model, backend="aot_eager_decomp_partition")
    finally:
        regional_compile.EAGER_ATTENTION[packed_attention.NAME] = original
    watched.register_forward_pre_hook(lambda *_: where.update(layer=True))
    watched.register_forward_hook(lambda *_: where.update(layer=False))

    # Weights saved for backward are references to the parameters, not new memory.
    weights = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}

    def pack(tensor):
        if where["layer"] and tensor.untyped_storage().data_ptr() not in weights:
            counted["attention" if where["attention"] else "graphs"] += tensor.numel() * tensor.element_size()
        return tensor

    ids = torch.randint(0, 512, (1, tokens), generator=torch.Generator().manual_seed(1))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=ids, labels=ids).loss.backward()
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=256, help="tokens of the one training row")
    parser.add_argument("--scale-to", type=int, default=4096, help="report bytes for this many tokens")
    parser.add_argument("--fractions", default="1.0,0.5,0.45,0.4,0.35,0.3,0.2,0.1,0.0")
    args = parser.parse_args()
    scale = args.scale_to / args.tokens
    for fraction in (float(value) for value in args.fractions.split(",")):
        counted = saved_bytes(fraction, args.tokens)
        scaled = {f"{key}_mib": round(value * scale / MIB, 1) for key, value in counted.items()}
        print(json.dumps({"fraction": fraction, **scaled}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
