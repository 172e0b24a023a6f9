"""One benchmark case in its own process (clean peak-memory numbers): prints one JSON line.

    python benchmarks/speed_cases.py CASE_JSON

A case is {"name", "path": "baseline"|"ftimg", "method": "qlora"|"lora"|"full", "seq", "batch",
"data": "fixed"|"varlen", "gc", "argv", "steps", "warmup", "model_dir", "work_dir"}
or {"name", "infer": {...}}. The baseline is what the seeds' scripts do: plain
transformers + PEFT (SDPA, LoRA r=8 on every linear, AdamW, padding to max length).
The ftimg path calls the sft job's own setup (train/builder.py) with its flags.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

from speed_model import fixed_length_examples, variable_length_examples

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE_INDEX = -100
VARLEN_SHORTEST = 50


class PadToMaxLength:
    """The seeds' collator: every example right-padded to max_length (seed 001's padding="max_length")."""

    def __init__(self, max_length: int, pad_token_id: int = 0):
        self.max_length = max_length
        self.pad = pad_token_id

    def __call__(self, features):
        ids, masks, labels = [], [], []
        for feature in features:
            padding = self.max_length - len(feature["input_ids"])
            ids.append(list(feature["input_ids"]) + [self.pad] * padding)
            masks.append([1] * len(feature["input_ids"]) + [0] * padding)
            labels.append(list(feature["labels"]) + [IGNORE_INDEX] * padding)
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(masks), "labels": torch.tensor(labels)}


def dataset(case, vocab_size: int) -> list:
    count = case["steps"] * case["batch"]
    if case["data"] == "varlen":
        sequences = variable_length_examples(count, VARLEN_SHORTEST, case["seq"], vocab_size)
    else:
        sequences = fixed_length_examples(count, case["seq"], vocab_size)
    return [{"input_ids": ids, "labels": ids} for ids in sequences]


def baseline_model(case):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    from ftimg_jobs.model.load import dtype_kwargs

    kwargs = dict(attn_implementation="sdpa", **dtype_kwargs(torch.bfloat16))
    if case["method"] == "qlora":
        kwargs.update(device_map={"": 0}, quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16))
    model = AutoModelForCausalLM.from_pretrained(case["model_dir"], **kwargs)
    if case["method"] == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=case["gc"])
    elif case["gc"]:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model.config.use_cache = not case["gc"]
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def baseline_trainer(case, work_dir, train_dataset):
    from ftimg_jobs.train.batches import CountingCollator
    from ftimg_jobs.train.throughput import ThroughputCallback

    model = baseline_model(case)
    args = TrainingArguments(output_dir=str(work_dir), per_device_train_batch_size=case["batch"],
                             max_steps=case["steps"], bf16=torch.cuda.is_available(), learning_rate=2e-4,
                             gradient_checkpointing=case["gc"], logging_steps=1, report_to="none",
                             save_strategy="no", seed=42)
    counting = CountingCollator(PadToMaxLength(case["seq"]))
    throughput = ThroughputCallback(counting, 1)
    trainer = Trainer(model=model, args=args, train_dataset=train_dataset, data_collator=counting,
                      callbacks=[throughput])
    return trainer, throughput, {}


def ftimg_trainer(case, work_dir, train_dataset):
    from ftimg_jobs.args.parser import parse_job_args
    from ftimg_jobs.data.collate import LeftPadCollator
    from ftimg_jobs.jobs.sft import ARGUMENT_CLASSES
    from ftimg_jobs.train.builder import CAUSAL_LM, build_collator, build_training_model

    job = {"qlora": "qlora-sft", "lora": "lora-sft", "full": "full-sft"}[case["method"]]
    argv = ["--model_name_or_path", case["model_dir"], "--output_dir", str(work_dir),
            "--model_max_length", str(case["seq"]), "--per_device_train_batch_size", str(case["batch"]),
            "--max_steps", str(case["steps"]), "--report_to", "none", "--save_strategy", "no",
            "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0.05", "--seed", "42",
            *case.get("argv", [])]
    model_args, lora_args, data_args, speed_args, training_args = parse_job_args(job, argv, ARGUMENT_CLASSES).instances
    model, attention, notes = build_training_model(
        AutoModelForCausalLM, model_args, lora_args, training_args, speed_args, task_type=CAUSAL_LM,
        tokens_per_step=training_args.per_device_train_batch_size * data_args.model_max_length)
    collator, throughput = build_collator(LeftPadCollator(0), speed_args, attention, training_args, notes)
    trainer = Trainer(model=model, args=training_args, train_dataset=train_dataset, data_collator=collator,
                      callbacks=[throughput])
    return trainer, throughput, {"attention": attention["implementation"], **notes}


def train_case(case) -> dict:
    work_dir = Path(case["work_dir"]) / case["name"]
    if case["method"] == "qlora" and not torch.cuda.is_available():
        return {"skipped": "QLoRA needs a CUDA GPU"}
    vocab_size = json.loads((Path(case["model_dir"]) / "config.json").read_text())["vocab_size"]
    train_dataset = dataset(case, vocab_size)
    build = ftimg_trainer if case["path"] == "ftimg" else baseline_trainer
    trainer, throughput, notes = build(case, work_dir, train_dataset)
    started = time.time()
    trainer.train()
    summary = throughput.summary(warmup_steps=case["warmup"])
    cuda = torch.cuda.is_available()
    return {**summary, "train_seconds": time.time() - started,
            "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2 ** 30 if cuda else None,
            "notes": notes, "steps": throughput.steps}


def infer_case(case) -> dict:
    """Run the infer job itself and read its run.json (generated tokens per second of generate time)."""
    spec = case["infer"]
    output = Path(case["work_dir"]) / case["name"] / "predictions.jsonl"
    command = [sys.executable, "-m", "ftimg_jobs", "infer", "--model_name_or_path", case["model_dir"],
               "--input_path", spec["input_path"], "--output_path", str(output),
               "--max_new_tokens", str(spec["max_new_tokens"]), *spec.get("argv", [])]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"infer exited {completed.returncode}: {completed.stderr[-3000:]}")
    manifest = json.loads((output.parent / "run.json").read_text())
    metrics = manifest["metrics"]
    peak = manifest.get("peak_gpu_memory_bytes")
    return {"tokens_per_second": metrics["tokens_per_second"], "generated_tokens": metrics["generated_tokens"],
            "generated_records": metrics["generated_records"], "generate_seconds": metrics["generate_seconds"],
            "peak_allocated_gib": peak / 2 ** 30 if peak else None}


def main() -> int:
    case = json.loads(sys.argv[1])
    result = infer_case(case) if "infer" in case else train_case(case)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
