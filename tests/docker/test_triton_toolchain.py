"""The cu130 profile's base has what Triton builds its kernel launchers with; the default profile's base has not.

Liger's kernels and the compiled decoder layers run Triton, which compiles a C launcher per kernel at
run time with the Python headers. The jobs check for both first (train/toolchain.py): this runs that
check, and a real compile against Python.h, inside the base images.
"""

import pytest

from ftimg import engine
from ftimg.image.base import ensure_base

pytestmark = pytest.mark.docker

TRITON_PROFILE = "cu130-torch2.11"
COMPILE_AGAINST_PYTHON_H = (
    "import subprocess, sysconfig, tempfile, os\n"
    "source = os.path.join(tempfile.mkdtemp(), 'launcher.c')\n"
    "open(source, 'w').write('#include <Python.h>\\nint main(void) { return PY_MAJOR_VERSION == 3 ? 0 : 1; }\\n')\n"
    "include = sysconfig.get_paths()['include']\n"
    "subprocess.run(['gcc', '-I' + include, source, '-o', source + '.out'], check=True)\n"
    "subprocess.run([source + '.out'], check=True)\n"
    "print('compiled')\n")


def toolchain_answer(client, image: str, project_root) -> str:
    source = (project_root / "entrypoints/ftimg_jobs/train/toolchain.py").read_text()
    status, out, err = engine.run_capture(client, image, ["-c", source + "\nprint(triton_toolchain_problem())"],
                                          entrypoint=["python3"], user="1000:1000")
    assert status == 0, err[-2000:]
    return out.strip().splitlines()[-1]


def test_the_triton_profile_base_can_build_launchers(client, lock, profile, project_root, tmp_path):
    triton_base = ensure_base(client, lock.profile(TRITON_PROFILE).spec["base"], tmp_path)
    assert toolchain_answer(client, triton_base, project_root) == "None"
    status, out, err = engine.run_capture(client, triton_base, ["-c", COMPILE_AGAINST_PYTHON_H],
                                          entrypoint=["python3"], user="1000:1000")
    assert status == 0 and out.strip() == "compiled", err[-2000:]
    # The default profile's smaller base has no compiler: there the jobs skip Triton levers with this reason.
    assert profile.base_image != triton_base
    plain_base = ensure_base(client, profile.spec["base"], tmp_path)
    assert "C compiler" in toolchain_answer(client, plain_base, project_root)
