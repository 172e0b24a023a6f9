"""The training benchmark's report: table, loss parity, MFU and plot, from results.json.

    python benchmarks/speed_report.py --out docs RESULTS.json [MORE.json ...]

Writes OUT/performance-table.md, OUT/performance.png and OUT/performance-results.json
(the merged runs: a case a later file ran is taken whole from that file, every repeat).
speed_benchmark.py writes the same files into its --out at the end of every call.
"""

import argparse
import json
import sys
from pathlib import Path

from speed_results import FORMAT
from speed_stats import case_summary, dense_bf16_peak_tflops, full_finetuning_mfu, loss_parity, pair_ratios


def number(value, digits=0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def rate_cell(summary) -> str:
    if summary is None:
        return "-"
    rate = summary["rate"]
    return f"{number(rate['median'])} ({number(rate['min'])}–{number(rate['max'])})"


def failure(runs_by_repeat: dict) -> str:
    reasons = sorted({run.get("error") or run.get("skipped") for run in runs_by_repeat.values()
                      if run.get("error") or run.get("skipped")})
    return "; ".join(reasons)


def pair_row(pair: dict, runs: dict) -> str:
    baseline_name = (pair["baseline"] or {}).get("name")
    ftimg_name = (pair["ftimg"] or {}).get("name")
    baseline_runs, ftimg_runs = runs.get(baseline_name, {}), runs.get(ftimg_name, {})
    baseline, ftimg = case_summary(baseline_runs), case_summary(ftimg_runs)
    if baseline is None and ftimg is None:
        reason = failure(baseline_runs) or failure(ftimg_runs) or "not measured"
        return f"| {pair['label']} | {pair['target']} | {reason} | | | | | | |"
    calls = {run.get("call") for run in [*baseline_runs.values(), *ftimg_runs.values()] if run.get("tokens_per_second")}
    if len(calls) > 1:  # a ratio only ever compares runs of one call (one machine, alternating)
        ratios, per_repeat = {}, "sides from different calls"
    else:
        ratios = pair_ratios(baseline_runs, ftimg_runs)
        per_repeat = ", ".join(f"{ratio:.2f}" for ratio in ratios["per_repeat"].values()) or "-"
    counts = f"{baseline['rate']['n'] if baseline else 0} / {ftimg['rate']['n'] if ftimg else 0}"
    return (f"| {pair['label']} | {pair['target']} | {rate_cell(baseline)} | {rate_cell(ftimg)} | "
            f"**{number(ratios.get('of_medians'), 2)}** | {per_repeat} | "
            f"{number((baseline or {}).get('peak_gib'), 1)} | {number((ftimg or {}).get('peak_gib'), 1)} | "
            f"{counts} |")


def format_table(results: dict) -> str:
    lines = ["| case | target | baseline tok/s, median (min–max) | ftimg tok/s, median (min–max) | ratio of medians "
             "| ratio per repeat | baseline peak GiB | ftimg peak GiB | repeats (baseline / ftimg) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [pair_row(pair, results["runs"]) for pair in results["pairs"]]
    return "\n".join(lines)


def parity_lines(results: dict) -> list:
    steps = results["settings"].get("parity_steps")
    lines = []
    for pair in results["pairs"]:
        if not pair["loss_parity"] or not steps:
            continue
        baseline = results["runs"].get(pair["baseline"]["name"], {}).get("0", {})
        ftimg = results["runs"].get(pair["ftimg"]["name"], {}).get("0", {})
        parity = loss_parity(baseline.get("losses") or [], ftimg.get("losses") or [], steps)
        if parity is None:
            lines.append(f"Loss parity ({pair['label']}): not measured (needs the first repeat of both sides, "
                         f"{steps} steps each).")
            continue
        verdict = "within" if parity["within"] else "NOT within"
        # Loss curves do not depend on the machine's speed; say so when the two came from different calls.
        across = (" The two curves come from different calls." if baseline.get("call") != ftimg.get("call")
                  else "")
        (base_first, base_last), (fast_first, fast_last) = (parity["baseline_smoothed_first_last"],
                                                            parity["ftimg_smoothed_first_last"])
        caveat = "" if parity["meaningful"] else (
            f" The baseline's loss fell only {parity['baseline_fell']:.1%}, too little for the comparison to tell "
            "a run that learns from one that does not.")
        lines.append(
            f"Loss parity ({pair['label']}, first repeat, {steps} steps, same data and seed): largest relative "
            f"difference {parity['max_relative_difference_smoothed']:.2%} between the trailing "
            f"{parity['window']}-step means of the two curves ({parity['max_relative_difference_raw']:.2%} step by "
            f"step): {verdict} {parity['tolerance']:.0%}. Loss ({parity['window']}-step means) {base_first:.3f} → "
            f"{base_last:.3f} (baseline), {fast_first:.3f} → {fast_last:.3f} (ftimg).{caveat}{across}")
    return lines


def mfu_lines(results: dict) -> list:
    gpu = results["calls"][-1]["environment"].get("gpu") if results["calls"] else None
    peak = dense_bf16_peak_tflops(gpu)
    lines = []
    for pair in results["pairs"]:
        parts = []
        for side in ("baseline", "ftimg"):
            if not pair[side] or pair[side]["method"] != "full":
                continue
            runs = [run for run in results["runs"].get(pair[side]["name"], {}).values()
                    if run.get("tokens_per_second")]
            summary = case_summary(results["runs"].get(pair[side]["name"], {}))
            if not runs or summary is None:
                continue
            mfu = full_finetuning_mfu(summary["rate"]["median"], runs[0]["flop_parameters"], gpu)
            parts.append(f"{side} {'unknown' if mfu is None else f'{mfu:.1%}'}")
        if len(parts) == 2:
            peak_text = f"{peak:.0f} TFLOP/s dense bf16" if peak else f"unknown peak for {gpu or 'no GPU'}"
            lines.append(f"MFU ({pair['label']}; 6·N FLOP a token, N without the input embedding, over "
                         f"{peak_text}; recomputed layers and attention not counted): {', '.join(parts)}.")
    return lines


def report_text(results: dict) -> str:
    return "\n\n".join([format_table(results), *parity_lines(results), *mfu_lines(results)])


def plot(results: dict, path) -> None:
    """Two panels: median tokens/s with the min–max spread, and the highest peak GPU memory, one bar per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for pair in results["pairs"]:
        for side in ("baseline", "ftimg"):
            name = (pair[side] or {}).get("name")
            if name and name not in names and case_summary(results["runs"].get(name, {})):
                names.append(name)
    if not names:
        return
    summaries = [case_summary(results["runs"][name]) for name in names]
    medians = [s["rate"]["median"] for s in summaries]
    errors = [[m - s["rate"]["min"] for m, s in zip(medians, summaries)],
              [s["rate"]["max"] - m for m, s in zip(medians, summaries)]]
    colors = ["#888888" if name.startswith("baseline") else "#1f77b4" for name in names]
    figure, (speed_axis, memory_axis) = plt.subplots(1, 2, figsize=(13, 0.45 * len(names) + 1.5))
    speed_axis.barh(names, medians, xerr=errors, color=colors, capsize=3)
    speed_axis.set_xlabel("non-padding tokens per second (median; bars: min–max over repeats)")
    memory_axis.barh(names, [s["peak_gib"] or 0 for s in summaries], color=colors)
    memory_axis.set_xlabel("peak GPU memory allocated (GiB)")
    memory_axis.set_yticklabels([])
    for axis in (speed_axis, memory_axis):
        axis.invert_yaxis()
        axis.grid(axis="x", alpha=0.3)
    gpu = results["calls"][-1]["environment"].get("gpu") if results["calls"] else None
    figure.suptitle(f"ftimg (blue) vs plain transformers + PEFT (grey), {gpu or 'CPU'}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_report(results: dict, out: Path) -> str:
    """Write performance-table.md and performance.png under ``out``; returns the report's text."""
    text = report_text(results)
    (Path(out) / "performance-table.md").write_text(text + "\n")
    plot(results, Path(out) / "performance.png")
    return text


def merge(paths) -> dict:
    merged = None
    for path in paths:
        loaded = json.loads(Path(path).read_text())
        if loaded.get("format") != FORMAT:
            raise ValueError(f"{path}: not a results.json of this benchmark (format {loaded.get('format')!r}, "
                             f"expected {FORMAT!r}); re-run benchmarks/speed_benchmark.py")
        if merged is None:
            merged = loaded
            continue
        # A case the later call ran is taken whole from it, so that no case mixes two calls' repeats; its runs'
        # call numbers move past the earlier file's calls.
        offset = len(merged["calls"])
        later = {name: {repeat: {**run, "call": run.get("call", 0) + offset} for repeat, run in by_repeat.items()}
                 for name, by_repeat in loaded["runs"].items() if by_repeat}
        runs = {**merged["runs"], **later}
        # A call that ran no loss-parity run (--parity-steps 0) keeps the parity runs an earlier call made.
        parity_steps = loaded["settings"].get("parity_steps") or merged["settings"].get("parity_steps") or 0
        # The later call's plan first; an earlier call's pair the later plan no longer has (a renamed lever)
        # keeps its row after them.
        later_names = {pair["name"] for pair in loaded["pairs"]}
        pairs = loaded["pairs"] + [pair for pair in merged["pairs"] if pair["name"] not in later_names]
        merged = {**loaded, "calls": merged["calls"] + loaded["calls"], "runs": runs, "pairs": pairs,
                  "cases": {**merged["cases"], **loaded["cases"]},
                  "settings": {**loaded["settings"], "parity_steps": parity_steps}}
    if len(paths) > 1:
        # A merged report shows what was measured: a lever no call ran has no row.
        merged["pairs"] = [pair for pair in merged["pairs"]
                           if merged["runs"].get((pair.get("ftimg") or {}).get("name"))]
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("results", nargs="+")
    args = parser.parse_args()
    try:
        merged = merge(args.results)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "performance-results.json").write_text(json.dumps(merged, indent=1) + "\n")
    print(write_report(merged, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
