"""--lora_dropout defaults to 0 (no dropped copy of each adapted linear's input); a value the user passes is kept.

The parser and PEFT checks need transformers/peft (skipped where they are missing).
"""

import pytest

from ftimg_jobs.args.model import LoraArguments
from ftimg_jobs.train.layer_budget import ModelShape, layer_activation_bytes

LLAMA_7B = ModelShape(num_layers=32, hidden_size=4096, intermediate_size=11008, vocab_size=32000)


def test_default_is_no_dropout_and_the_layer_budget_counts_no_dropout_copies():
    default = LoraArguments().lora_dropout
    assert default == 0
    # train/checkpointing.py passes ``lora_dropout > 0`` to the budget: the default plans the smaller layer.
    with_default = layer_activation_bytes(LLAMA_7B, 4096, lora_dropout=default > 0, fused_mlp=True)
    with_seed_value = layer_activation_bytes(LLAMA_7B, 4096, lora_dropout=0.05 > 0, fused_mlp=True)
    assert with_default < with_seed_value


@pytest.mark.parametrize("argv, expected", [([], 0.0), (["--lora_dropout", "0.05"], 0.05)])
def test_parser_keeps_what_the_user_passes(argv, expected):
    transformers = pytest.importorskip("transformers")
    (lora_args,) = transformers.HfArgumentParser([LoraArguments]).parse_args_into_dataclasses(args=argv)
    assert lora_args.lora_dropout == expected


def test_help_states_the_default_and_why():
    transformers = pytest.importorskip("transformers")
    text = " ".join(transformers.HfArgumentParser([LoraArguments]).format_help().split())
    assert "Default 0" in text and "0.05" in text and "checkpointing" in text


@pytest.mark.parametrize("dropout, kind", [(0.0, "Identity"), (0.05, "Dropout")])
def test_peft_puts_an_identity_where_the_dropout_would_be(dropout, kind):
    pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    from ftimg_jobs.model.lora import apply_lora

    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1)
    model = apply_lora(transformers.LlamaForCausalLM(config), LoraArguments(lora_dropout=dropout),
                       task_type="CAUSAL_LM")
    dropouts = [module for name, module in model.named_modules() if name.endswith("lora_dropout.default")]
    assert len(dropouts) == 7  # q, k, v, o, gate, up, down of the one layer
    assert {type(module).__name__ for module in dropouts} == {kind}
