"""Every shipped DeepSpeed and accelerate config parses and fits an image without a compiler."""

import json
from pathlib import Path

import pytest
import yaml
from project_paths import ENTRYPOINTS

CONFIGS = ENTRYPOINTS / "configs"
DEEPSPEED = sorted((CONFIGS / "deepspeed").glob("*.json"))
ACCELERATE = sorted((CONFIGS / "accelerate").glob("*.yaml"))


def test_the_four_zero_configs_are_shipped():
    assert {path.stem for path in DEEPSPEED} == {"zero2", "zero2_offload", "zero3", "zero3_offload"}


@pytest.mark.parametrize("path", DEEPSPEED, ids=lambda p: p.stem)
def test_deepspeed_config_uses_auto_values_and_torch_adamw(path):
    config = json.loads(path.read_text())
    # An optimizer block would make DeepSpeed JIT-compile FusedAdam/CPUAdam, impossible without nvcc.
    assert "optimizer" not in config
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert config[key] == "auto"
    assert config["bf16"]["enabled"] == "auto" and config["fp16"]["enabled"] == "auto"
    stage = config["zero_optimization"]["stage"]
    assert stage == int(path.stem[4])
    if path.stem.endswith("_offload"):
        assert config["zero_force_ds_cpu_optimizer"] is False
        assert config["zero_optimization"]["offload_optimizer"]["device"] == "cpu"


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.stem)
def test_accelerate_config_points_at_a_shipped_deepspeed_file(path):
    config = yaml.safe_load(path.read_text())
    assert config["distributed_type"] in {"MULTI_GPU", "DEEPSPEED"}
    if config["distributed_type"] == "DEEPSPEED":
        name = Path(config["deepspeed_config"]["deepspeed_config_file"]).name
        assert (CONFIGS / "deepspeed" / name).is_file()
