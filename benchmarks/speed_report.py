"""The benchmark's ratio table (ftimg / baseline) and its plot; also re-renders them from results files.

    python benchmarks/speed_report.py --out docs results.json [later-results.json ...]

Cases in later files replace those of the same name in earlier ones (a re-run of
some cases with --only); the merged cases are written to OUT/performance-results.json.
"""

import argparse
import json
import sys
from pathlib import Path

# (label, ftimg case, baseline case, what the target asks)
COMPARISONS = [
    ("QLoRA 7B @4096, budget 24 GiB", "ftimg-qlora-24gib", "baseline-qlora-gc", ">=2x tok/s, <=24 GiB"),
    ("QLoRA 7B @4096, all layers checkpointed", "ftimg-qlora-lean", "baseline-qlora-gc", "<=8 GiB"),
    ("QLoRA 7B @4096, default budget", "ftimg-qlora-default", "baseline-qlora-gc", "-"),
    ("LoRA bf16 7B @4096, budget 24 GiB", "ftimg-lora-24gib", "baseline-lora-gc", ">=2x tok/s, <=24 GiB"),
    ("LoRA bf16 7B @4096, default budget", "ftimg-lora-default", "baseline-lora-gc", "-"),
    ("LoRA bf16, lengths 50-2048, batch 4 (real tok/s)", "ftimg-varlen", "baseline-varlen-padded", ">=2.5x"),
    ("Full fine-tuning 7B @4096", "ftimg-full", None, "runs on one 80 GB GPU"),
    ("infer: 256 prompts, generated tok/s", "infer-batched", "infer-one-at-a-time", ">=3x"),
]


def rate(result):
    """Tokens per second: the median step for fixed-length data; for variable-length data all real
    (non-padding) tokens over all measured steps' time, since step sizes differ; generated tokens for infer."""
    if not result:
        return None
    if result.get("case", {}).get("data") == "fixed":
        return result.get("median_tokens_per_second")
    return result.get("tokens_per_second")


def comparison_rows(cases: dict) -> list:
    rows = []
    for label, ftimg_name, baseline_name, target in COMPARISONS:
        ftimg = cases.get(ftimg_name)
        baseline = cases.get(baseline_name) if baseline_name else None
        if not ftimg or rate(ftimg) is None:
            if ftimg:
                rows.append({"label": label, "target": target, "note": ftimg.get("error") or ftimg.get("skipped")})
            continue
        row = {"label": label, "target": target, "ftimg_rate": rate(ftimg), "ftimg_gib": ftimg.get("peak_allocated_gib"),
               "baseline_rate": rate(baseline), "baseline_gib": (baseline or {}).get("peak_allocated_gib")}
        if row["baseline_rate"]:
            row["speedup"] = row["ftimg_rate"] / row["baseline_rate"]
        if row["baseline_gib"] and row["ftimg_gib"]:
            row["memory_ratio"] = row["ftimg_gib"] / row["baseline_gib"]
        rows.append(row)
    return rows


def number(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"


def format_table(rows: list) -> str:
    lines = ["| case | target | baseline tok/s | baseline GiB | ftimg tok/s | ftimg GiB | tok/s ratio | memory ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "note" in row:
            lines.append(f"| {row['label']} | {row['target']} | | | {row['note']} | | | |")
            continue
        lines.append(f"| {row['label']} | {row['target']} | {number(row['baseline_rate'])} | "
                     f"{number(row['baseline_gib'], 1)} | {number(row['ftimg_rate'])} | {number(row['ftimg_gib'], 1)} | "
                     f"{number(row.get('speedup'), 2)} | {number(row.get('memory_ratio'), 2)} |")
    return "\n".join(lines)


def plot(cases: dict, path, title: str) -> None:
    """Two panels, tokens per second and peak GPU memory, one bar per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, result in cases.items() if rate(result) is not None]
    colors = ["#888888" if name.startswith(("baseline", "infer-one")) else "#1f77b4" for name in names]
    figure, (speed_axis, memory_axis) = plt.subplots(1, 2, figsize=(13, 5))
    speed_axis.barh(names, [rate(cases[name]) for name in names], color=colors)
    speed_axis.set_xlabel("tokens per second (non-padding; generated for infer)")
    memory_axis.barh(names, [cases[name].get("peak_allocated_gib") or 0 for name in names], color=colors)
    memory_axis.set_xlabel("peak GPU memory allocated (GiB)")
    memory_axis.set_yticklabels([])
    for axis in (speed_axis, memory_axis):
        axis.invert_yaxis()
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(f"ftimg (blue) vs plain transformers + PEFT (grey), {title}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("results", nargs="+")
    args = parser.parse_args()
    merged = {}
    for path in args.results:
        loaded = json.loads(Path(path).read_text())
        merged = {**merged, **{key: value for key, value in loaded.items() if key != "cases"},
                  "cases": {**merged.get("cases", {}), **loaded["cases"]}}
    out = Path(args.out)
    (out / "performance-results.json").write_text(json.dumps(merged, indent=1) + "\n")
    rows = comparison_rows(merged["cases"])
    (out / "performance-table.md").write_text(format_table(rows) + "\n")
    plot(merged["cases"], out / "performance.png", title=merged["environment"]["gpu"] or "CPU")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
