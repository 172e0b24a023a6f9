"""The benchmark's torch-free modules (plan, statistics, results file) are imported from benchmarks/."""

import sys

from project_paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
