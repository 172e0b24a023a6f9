"""What Triton needs on the machine at run time, besides the GPU.

Triton (Liger's kernels, torch.compile's generated kernels) builds a small C launcher for each
kernel signature the first time it runs it: a C compiler (``CC``, else gcc or clang on PATH) and
the Python headers. An image without them fails at the first kernel, mid-training; the jobs
check here first and skip the lever with this reason instead.
"""

import os
import shutil
import sysconfig
from pathlib import Path
from typing import Optional


def triton_toolchain_problem() -> Optional[str]:
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        return "Triton needs a C compiler at run time (gcc, clang or $CC) and none was found"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"Triton needs the Python headers at run time and {headers} is missing"
    return None
