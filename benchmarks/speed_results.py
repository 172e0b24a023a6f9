"""results.json of the training benchmark: kept as runs finish, so a later call continues where one stopped
(torch-free, unit-tested).

    {"format": FORMAT, "settings": {...}, "calls": [{"started", "environment"}],
     "pairs": [...], "cases": {name: case}, "runs": {name: {"0": result, "1": ...}}}

A run's result holds either "tokens_per_second" (measured), "error" (retried by a later call)
or "skipped" (with the reason).
"""

import json
import os
from pathlib import Path

FORMAT = "ftimg-speed-2"
# Settings that change what a run measures: a later call must use the same ones to add to a file.
SAME_SETTINGS = ("tiny", "steps", "warmup", "parity_steps", "shapes")


class ResultsMismatch(ValueError):
    pass


def new_results(settings: dict) -> dict:
    return {"format": FORMAT, "settings": settings, "calls": [], "pairs": [], "cases": {}, "runs": {}}


def load_results(path: Path, settings: dict, environment: dict) -> dict:
    """The results at ``path`` (or new ones) after checking they were made the same way, on the same GPU."""
    if not path.exists():
        return new_results(settings)
    results = json.loads(path.read_text())
    if results.get("format") != FORMAT:
        raise ResultsMismatch(f"{path} was written by another version of the benchmark (format "
                              f"{results.get('format')!r}, this one writes {FORMAT!r}); use a new --out")
    differing = [f"--{key.replace('_', '-')} {results['settings'].get(key)} there, {settings.get(key)} now"
                 for key in SAME_SETTINGS if results["settings"].get(key) != settings.get(key)]
    if differing:
        raise ResultsMismatch(f"{path} holds runs made with other settings ({'; '.join(differing)}): "
                              "repeat those settings to continue it, or use a new --out")
    earlier_gpus = {call["environment"].get("gpu") for call in results["calls"]}
    if earlier_gpus and environment.get("gpu") not in earlier_gpus:
        raise ResultsMismatch(f"{path} holds runs on {', '.join(map(str, sorted(earlier_gpus, key=str)))}; this "
                              f"machine has {environment.get('gpu') or 'no GPU'}: ratios must come from one kind of "
                              "GPU; use a new --out")
    results["settings"] = {**results["settings"], **settings}
    return results


def save_results(path: Path, results: dict) -> None:
    """Write through a temporary file, so a run killed mid-write leaves the previous file whole."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(temporary, path)


def run_result(results: dict, name: str, repeat: int):
    return results["runs"].get(name, {}).get(str(repeat))


def is_measured(results: dict, name: str, repeat: int) -> bool:
    return bool((run_result(results, name, repeat) or {}).get("tokens_per_second"))


def record_run(results: dict, case: dict, repeat: int, result: dict) -> None:
    results["cases"][case["name"]] = case
    results["runs"].setdefault(case["name"], {})[str(repeat)] = result
