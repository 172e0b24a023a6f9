"""One training run of one benchmark case, in its own process (clean peak-memory numbers): prints one RESULT line.

    PYTHONPATH=entrypoints:benchmarks python benchmarks/speed_cases.py RUN_JSON

RUN_JSON is a case of speed_plan.py plus "total_steps", "warmup", "steps" (measured),
"model_dir" and "run_dir". The baseline side is speed_baselines.py, the ftimg side
speed_ftimg.py; both get the same data in the same order and the same seed.
"""

import time

PROCESS_STARTED = time.time()  # set-up time counts the imports below

import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from transformers import TrainerCallback, set_seed  # noqa: E402

from speed_model import classification_examples, fixed_length_examples, variable_length_examples  # noqa: E402
from speed_stats import run_rate  # noqa: E402

SEED = 42


def dataset(case) -> list:
    """``total_steps × batch`` examples, the same for both sides of a pair."""
    count = case["total_steps"] * case["batch"]
    if case["data"] == "cls":
        return [{"input_ids": ids, "labels": label}
                for ids, label in classification_examples(count, case["shortest"], case["seq"])]
    if case["data"] == "varlen":
        sequences = variable_length_examples(count, case["shortest"], case["seq"])
    else:
        sequences = fixed_length_examples(count, case["seq"])
    return [{"input_ids": ids, "labels": ids} for ids in sequences]


def builder(case):
    from speed_baselines import baseline_trainer
    from speed_ftimg import ftimg_cls_trainer, ftimg_sft_trainer

    if case["side"] == "baseline":
        return baseline_trainer
    return ftimg_cls_trainer if case["task"] == "cls" else ftimg_sft_trainer


def flop_parameters(model) -> int:
    """Weights a token's matrix products touch: every parameter but the input embedding (a lookup)."""
    embedding = model.get_input_embeddings().weight.numel()
    return sum(parameter.numel() for parameter in model.parameters()) - embedding


class DeviceAllocations(TrainerCallback):
    """cudaMalloc calls during each step and reserved GiB after it: a slow step that allocated is the allocator's
    doing."""

    def __init__(self):
        self.before_training = 0
        self.steps = []

    @staticmethod
    def stats() -> dict:
        return torch.cuda.memory_stats() if torch.cuda.is_available() else {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.before_training = self.stats().get("num_device_alloc", 0)

    def on_step_end(self, args, state, control, **kwargs):
        stats = self.stats()
        if stats:
            reserved_gib = round(stats.get("reserved_bytes.all.current", 0) / 2 ** 30, 2)
            self.steps.append((stats.get("num_device_alloc", 0), reserved_gib))

    def per_step(self) -> dict:
        counts = [count for count, _ in self.steps]
        return {"device_allocs": [later - earlier for earlier, later in zip([self.before_training] + counts, counts)],
                "reserved_gib": [reserved for _, reserved in self.steps]}


class CollectorPauses(TrainerCallback):
    """Python's garbage collections during the measured steps: count and host milliseconds per generation (a
    full collection stalls the host, and a step short on host time with it)."""

    def __init__(self, first_step: int, last_step: int):
        self.first_step, self.last_step = first_step, last_step
        self.by_generation, self.started = {}, None

    def record(self, phase, info):
        if phase == "start":
            self.started = time.perf_counter()
        elif self.started is not None:
            count, milliseconds = self.by_generation.get(info["generation"], (0, 0.0))
            elapsed_ms = 1e3 * (time.perf_counter() - self.started)
            self.by_generation[info["generation"]] = (count + 1, milliseconds + elapsed_ms)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.first_step:
            gc.callbacks.append(self.record)
        elif state.global_step == self.last_step and self.record in gc.callbacks:
            gc.callbacks.remove(self.record)

    def result(self) -> dict:
        return {f"generation_{generation}": {"collections": count, "ms": round(milliseconds, 1)}
                for generation, (count, milliseconds) in sorted(self.by_generation.items())}


def train_run(case) -> dict:
    run_dir = Path(case["run_dir"])
    kernel_cache = None
    if case["side"] == "ftimg":  # as the jobs' start_training does, before flash-attn-4 is imported
        from ftimg_jobs.model.flash4_kernel_cache import enable_flash4_kernel_cache

        kernel_cache = enable_flash4_kernel_cache()
    set_seed(SEED)  # LoRA's initial weights and dropout masks: the same random stream on both sides
    trainer, throughput, notes = builder(case)(case, run_dir, dataset(case))
    allocations = DeviceAllocations()
    trainer.add_callback(allocations)
    collections = CollectorPauses(case["warmup"], case["warmup"] + case["steps"])
    trainer.add_callback(collections)
    profile = None
    if case.get("profile_steps") and torch.cuda.is_available():
        from speed_profile import StepProfile

        # After the measured steps, so that tracing never slows a measured one.
        profile = StepProfile(after=case["warmup"] + case["steps"], steps=case["profile_steps"])
        trainer.add_callback(profile)
    setup_seconds = time.time() - PROCESS_STARTED
    started = time.time()
    trainer.train()
    train_seconds = time.time() - started
    rate = run_rate(throughput.steps, case["warmup"], case["steps"])
    if rate is None:
        raise RuntimeError(f"{len(throughput.steps)} steps timed; {case['warmup']} + {case['steps']} were asked")
    cuda = torch.cuda.is_available()
    return {**rate, "setup_seconds": setup_seconds, "train_seconds": train_seconds,
            "total_steps": len(throughput.steps),
            "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2 ** 30 if cuda else None,
            "flop_parameters": flop_parameters(trainer.model) if case["method"] == "full" else None,
            "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
            "step_seconds": [round(step["seconds"], 4) for step in throughput.steps],
            "step_tokens": [step["tokens"] for step in throughput.steps],
            "step_allocations": allocations.per_step(),
            "garbage_collections": collections.result(),
            "profile": profile.result if profile else None,
            "notes": {**notes, "flash4_kernel_cache": kernel_cache} if kernel_cache else notes}


def main() -> int:
    case = json.loads(sys.argv[1])
    print("RESULT " + json.dumps(train_run(case), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
