"""Host time Python's garbage collector takes in a training loop, with and without --freeze_gc (CPU, no GPU).

    PYTHONPATH=entrypoints:benchmarks python benchmarks/gc_pauses.py --out gc-pauses.json

A narrow Llama with the 7B model's 32 layers, LoRA on every linear and every layer checkpointed: the
Python objects a step makes scale with the layers and modules, not their width, so the collector sees
what it sees in a 7B run while the arithmetic stays small. Each setting runs in its own process under
the Trainer; the collections after the first step are counted and timed per generation.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def one_run(freeze: bool, steps: int) -> dict:
    import gc

    import peft
    import transformers
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from ftimg_jobs.train.garbage_collection import FreezeLongLivedObjects
    from speed_cases import CollectorPauses

    transformers.logging.set_verbosity_error()
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=32,
                                      num_attention_heads=4, vocab_size=256)
    model = peft.get_peft_model(transformers.LlamaForCausalLM(config), peft.LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    data = [{"input_ids": list(range(i % 7, i % 7 + 64)), "labels": list(range(i % 7, i % 7 + 64))}
            for i in range(steps)]

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                self.started = time.perf_counter()

    clock, pauses, notes = Clock(), CollectorPauses(1, steps), {}
    callbacks = [clock, pauses] + ([FreezeLongLivedObjects(notes)] if freeze else [])
    args = TrainingArguments(output_dir="/tmp/gc-pauses-run", per_device_train_batch_size=1, max_steps=steps,
                             report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
                             gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False},
                             use_cpu=True)
    Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks).train()
    return {"freeze_gc": freeze, "steps_timed": steps - 1, "seconds": time.perf_counter() - clock.started,
            "collections": pauses.result(), "objects_frozen": notes.get("objects_frozen"),
            "objects_tracked_at_end": len(gc.get_objects())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--run", choices=["freeze", "no-freeze"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print("RESULT " + json.dumps(one_run(args.run == "freeze", args.steps)))
        return 0
    results = []
    for setting in ("no-freeze", "freeze"):
        completed = subprocess.run([sys.executable, __file__, "--out", args.out, "--steps", str(args.steps),
                                    "--run", setting], capture_output=True, text=True, check=True)
        line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT "):]))
        print(json.dumps(results[-1]), flush=True)
    Path(args.out).write_text(json.dumps({"python": sys.version.split()[0], "runs": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
