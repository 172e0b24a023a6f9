"""What the training benchmark runs, and in which order (torch-free, unit-tested).

A pair is a baseline case and an ftimg case of the same model, data and LoRA
settings. Pairs are listed most important first (issue 15): LoRA, QLoRA, cls,
full fine-tuning, variable length, QLoRA memory-saving (a budget of 8 GiB, and
every layer checkpointed); then levers not yet defaults, each against the baseline of
the pair it would improve. Within a pair the two
cases alternate, one process each: baseline, ftimg, baseline, ftimg, ...
so slow drift of the machine (clocks, heat, a neighbour) falls on both sides.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

SHORTEST = 50  # variable-length and cls examples have 50..max tokens (issue 15)


@dataclass(frozen=True)
class Shapes:
    """Sequence lengths of the cases: the 7B run, or the tiny CPU smoke run."""

    fixed: int  # every example this long (LoRA, QLoRA, full)
    varlen: int  # variable-length SFT: lengths uniform in [SHORTEST, varlen]
    cls: int  # classification: lengths uniform in [SHORTEST, cls], padded to cls by the baseline


SHAPES_7B = Shapes(fixed=4096, varlen=2048, cls=1024)
SHAPES_TINY = Shapes(fixed=128, varlen=96, cls=96)


@dataclass(frozen=True)
class Pair:
    name: str
    label: str
    target: str
    baseline: dict
    ftimg: dict
    loss_parity: bool = False  # its first repeat also records a loss curve long enough to compare


@dataclass
class Run:
    case: dict
    repeat: int
    total_steps: int  # optimizer steps the process runs (warm-up + measured, or longer for the loss curve)

    @property
    def key(self) -> Tuple[str, int]:
        return self.case["name"], self.repeat


def case(name: str, side: str, method: str, data: str, seq: int, batch: int, **extra) -> dict:
    """``data``: fixed (every example ``seq`` long), varlen or cls (lengths in [SHORTEST, seq])."""
    return {"name": name, "side": side, "method": method, "data": data, "seq": seq, "batch": batch,
            "shortest": SHORTEST, "task": "cls" if data == "cls" else "causal", "gc": False, "argv": [], "env": {},
            **extra}


def lever(base: Pair, suffix: str, flags: List[str], target: str, env: Optional[Dict[str, str]] = None) -> Pair:
    """A lever not (or no longer) a default: ``base``'s ftimg case with ``flags`` added (and ``env`` set in its
    process: torch's own switches), against its baseline."""
    ftimg = {**base.ftimg, "name": f"{base.ftimg['name']}-{suffix}", "argv": base.ftimg["argv"] + flags,
             "env": {**base.ftimg.get("env", {}), **(env or {})}}
    settings = flags + [f"{key}={value}" for key, value in (env or {}).items()]
    return Pair(f"{base.name}-{suffix}", f"{base.label}, {' '.join(settings)}", target, base.baseline, ftimg)


def pairs(shapes: Shapes) -> List[Pair]:
    """Every pair, most important first. Baselines checkpoint every layer, as the seeds train."""
    budget = ["--gpu_memory_budget_gib", "24"]
    qlora_baseline = case("baseline-qlora-gc", "baseline", "qlora", "fixed", shapes.fixed, 1, gc=True)
    lora = Pair("lora", f"LoRA bf16 7B @{shapes.fixed}, budget 24 GiB", ">= 2.0x at <= 24 GiB",
                case("baseline-lora-gc", "baseline", "lora", "fixed", shapes.fixed, 1, gc=True),
                case("ftimg-lora-24gib", "ftimg", "lora", "fixed", shapes.fixed, 1, argv=budget), loss_parity=True)
    qlora = Pair("qlora", f"QLoRA 7B @{shapes.fixed}, budget 24 GiB", ">= 2.2x at <= 24 GiB", qlora_baseline,
                 case("ftimg-qlora-24gib", "ftimg", "qlora", "fixed", shapes.fixed, 1, argv=budget))
    cls = Pair("cls", f"cls (LoRA), lengths {SHORTEST}-{shapes.cls}, batch 8 (non-padding tok/s)", ">= 2x",
               case("baseline-cls-padded", "baseline", "lora", "cls", shapes.cls, 8, gc=True),
               case("ftimg-cls", "ftimg", "lora", "cls", shapes.cls, 8))
    full = Pair("full", f"full fine-tuning 7B @{shapes.fixed}", ">= 1.5x; MFU reported",
                case("baseline-full-gc", "baseline", "full", "fixed", shapes.fixed, 1, gc=True),
                case("ftimg-full", "ftimg", "full", "fixed", shapes.fixed, 1))
    varlen = Pair("varlen", f"LoRA bf16, lengths {SHORTEST}-{shapes.varlen}, batch 4 (real tok/s)", ">= 3x",
                  case("baseline-varlen-padded", "baseline", "lora", "varlen", shapes.varlen, 4, gc=True),
                  case("ftimg-varlen", "ftimg", "lora", "varlen", shapes.varlen, 4))
    # Same baseline as the QLoRA pair: its runs are measured once and shared.
    qlora_lean = Pair("qlora-lean", f"QLoRA 7B @{shapes.fixed}, every layer checkpointed", "<= 8 GiB at >= 1.6x",
                      qlora_baseline, case("ftimg-qlora-lean", "ftimg", "qlora", "fixed", shapes.fixed, 1,
                                           argv=["--gradient_checkpointing", "True"]))
    # The same target through the memory budget: the layers that fit 8 GiB keep their activations.
    qlora_8gib = Pair("qlora-8gib", f"QLoRA 7B @{shapes.fixed}, budget 8 GiB", "<= 8 GiB at >= 1.6x", qlora_baseline,
                      case("ftimg-qlora-8gib", "ftimg", "qlora", "fixed", shapes.fixed, 1,
                           argv=["--gpu_memory_budget_gib", "8"]))
    compile_on, compile_off = ["--compile_layers", "True"], ["--compile_layers", "False"]
    return [
        lora, qlora, cls, full, varlen, qlora_8gib, qlora_lean,
        # Full fine-tuning's defaults on an H200 (fp32 AdamW, which fits there; compiled layers) against the
        # 8-bit AdamW that smaller GPUs get.
        lever(full, "8bit", ["--eight_bit_optimizer", "True"], "what fp32 AdamW buys"),
        # Regional torch.compile of the decoder layers: on by default for sft, so those pairs run it and the eager
        # pairs measure what it buys in the same call; cls turns it on.
        *(lever(pair, "eager", compile_off, "what compile buys") for pair in (lora, qlora, qlora_lean, varlen, full)),
        lever(cls, "compile", compile_on, "lever for >= 2x"),
        # Inductor's C++ wrapper: the compiled graphs launch their kernels from C++ instead of a Python function,
        # for steps whose host, not GPU, sets the pace (docs/performance.md, the step profile).
        lever(lora, "cppwrapper", [], "lever for >= 2.0x", {"TORCHINDUCTOR_CPP_WRAPPER": "1"}),
        # The plan before the partition fraction: 17 whole layers recomputed to fit 24 GiB, the rest kept.
        lever(lora, "17-checkpointed", ["--gradient_checkpointing_layers", "17"], "what the partition fraction buys"),
        # transformers' NaN/inf loss filter, off by default in the jobs: it synchronises the device every step.
        lever(lora, "nan-filter", ["--logging_nan_inf_filter", "True"], "what skipping the NaN check buys"),
        # Python's collector walking every long-lived object (train/garbage_collection.py), on the step with the
        # most host work: QLoRA with 30 of 32 layers recomputed.
        lever(qlora_8gib, "gc-unfrozen", ["--freeze_gc", "False"], "what freezing the collector buys"),
        # The allocator's reserve on top of the allocated peak (24.7 GiB reserved for 21.8 allocated at 24 GiB):
        # segments that grow in place instead of new blocks for each size. Set in the process's environment at
        # its start: torch reads the variable when it is imported.
        lever(lora, "expandable", [], "reserved memory within 24 GiB",
              {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}),
    ]


def select_pairs(all_pairs: List[Pair], only: str) -> List[Pair]:
    """``only``: comma-separated pair names (lora, qlora, ...) or case names; empty: every pair.

    A case name keeps its pair but runs only that side (the other side's runs may already be measured).
    """
    names = [name.strip() for name in only.split(",") if name.strip()]
    if not names:
        return list(all_pairs)
    known = {pair.name for pair in all_pairs} | {c["name"] for pair in all_pairs for c in (pair.baseline, pair.ftimg)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"--only {','.join(unknown)}: unknown; choose from {', '.join(sorted(known))}")
    chosen = []
    for pair in all_pairs:
        if pair.name in names:
            chosen.append(pair)
            continue
        sides = {side: c for side, c in (("baseline", pair.baseline), ("ftimg", pair.ftimg)) if c["name"] in names}
        if sides:
            chosen.append(Pair(pair.name, pair.label, pair.target, sides.get("baseline"), sides.get("ftimg"),
                               pair.loss_parity))
    return chosen


def run_order(chosen: List[Pair], repeats: int, total_steps: int, parity_steps: int) -> List[Run]:
    """Pair by pair; within a pair baseline and ftimg alternate, repeat after repeat. A case shared by two pairs
    (the QLoRA baseline) is listed once, with the first pair that has it."""
    order, seen = [], set()
    for pair in chosen:
        for repeat in range(repeats):
            for one_case in (pair.baseline, pair.ftimg):
                if one_case is None or (one_case["name"], repeat) in seen:
                    continue
                seen.add((one_case["name"], repeat))
                run_steps = max(total_steps, parity_steps) if pair.loss_parity and repeat == 0 else total_steps
                order.append(Run(one_case, repeat, run_steps))
    return order


def computed_tokens_per_step(one_case: dict) -> float:
    """Tokens a step computes on (padding included): for estimating how long a case takes."""
    if one_case["data"] == "fixed" or one_case["side"] == "baseline":
        return one_case["batch"] * one_case["seq"]
    return one_case["batch"] * (one_case["shortest"] + one_case["seq"]) / 2


@dataclass
class Estimate:
    seconds: float
    source: str  # "measured" (this case's own runs) or "scaled from CASE"


def estimate_runs(runs: List[Run], measured: Dict[str, Dict[str, dict]],
                  cases: Dict[str, dict]) -> Dict[Tuple[str, int], Estimate]:
    """Seconds each run will take: a case's own median wall time once measured; otherwise the first measured
    run's set-up time (process start, imports, loading) plus its step time scaled by tokens per step. Rough
    for cases unlike that one (QLoRA quantizes on load, full fine-tuning sets up optimizer state)."""
    walls, reference = {}, None
    for name, by_repeat in measured.items():
        for result in by_repeat.values():
            if not result.get("tokens_per_second"):
                continue
            walls.setdefault(name, []).append(result["wall_s"])
            reference = reference or (name, result)
    estimates = {}
    for run in runs:
        name = run.case["name"]
        if name in walls:
            ordered = sorted(walls[name])
            estimates[run.key] = Estimate(ordered[len(ordered) // 2], "measured")
        elif reference:
            ref_name, ref = reference
            setup = ref["wall_s"] - ref["train_seconds"]
            per_token = ref["train_seconds"] / (ref["total_steps"] * computed_tokens_per_step(cases[ref_name]))
            seconds = setup + per_token * run.total_steps * computed_tokens_per_step(run.case)
            estimates[run.key] = Estimate(seconds, f"scaled from {ref_name}")
    return estimates
