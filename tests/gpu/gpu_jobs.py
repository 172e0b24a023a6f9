"""What the GPU tests share: a small Llama saved to disk, and a job run in its own process with its run.json."""

import json
import os
import subprocess
import sys
from pathlib import Path

from project_paths import ENTRYPOINTS


def save_small_llama(path: Path, layers: int) -> Path:
    """Llama-shaped (12 heads of 64 over 4 KV heads, MLP 2048), random bf16 weights from seed 0, the tiny tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftimg_jobs.model.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=layers, num_attention_heads=12,
                         num_key_value_heads=4, intermediate_size=2048, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def random_llama_on_gpu(hidden_size: int, num_key_value_heads: int, intermediate_size: int,
                       max_position_embeddings: int):
    """A 4-layer Llama of 8 heads over a 1,000-word vocabulary on SDPA, random bf16 weights from seed 0, for inference."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=1000, hidden_size=hidden_size, num_hidden_layers=4, num_attention_heads=8,
                         num_key_value_heads=num_key_value_heads, intermediate_size=intermediate_size,
                         max_position_embeddings=max_position_embeddings)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to("cuda", torch.bfloat16).eval()


def run_job(job, output_dir, *flags, shown=("device", "attention", "global_step", "metrics", "wall_time_s",
                                            "peak_gpu_memory_bytes")) -> dict:
    """Run ``python -m ftimg_jobs JOB --output_dir DIR FLAGS`` to success; print and return its run.json."""
    env = dict(os.environ, PYTHONPATH=f"{ENTRYPOINTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = subprocess.run([sys.executable, "-m", "ftimg_jobs", job, "--output_dir", str(output_dir), *flags],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"{job} exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    run = json.loads((Path(output_dir) / "run.json").read_text())
    print(f"\n{job}: " + json.dumps({key: run.get(key) for key in shown}))
    return run


def flash4_skip_reason():
    """Why the FlashAttention-4 tests cannot run here (None: they can): no GPU, a GPU it has no kernels for, or
    flash-attn-4 missing or not importing."""
    import torch

    from ftimg_jobs.model.attention import FLASH4_ARCHITECTURES
    from ftimg_jobs.model.flash4_attention import flash4_problem

    if not torch.cuda.is_available():
        return "needs a CUDA GPU"
    major, minor = torch.cuda.get_device_capability()
    if major not in FLASH4_ARCHITECTURES:
        return f"compute capability {major}.{minor}: FlashAttention-4 runs on Hopper and datacenter Blackwell"
    return flash4_problem(gpu_could_run_it=True)
