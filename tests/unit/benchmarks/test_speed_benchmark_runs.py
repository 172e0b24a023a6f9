"""A benchmark run's own process (speed_launch.py): a fresh interpreter or a fork, its result or its error."""

import json
import os
import time

import speed_benchmark
import speed_launch


def test_a_run_with_its_own_environment_gets_a_fresh_interpreter_on_top_of_the_callers(tmp_path, monkeypatch):
    """torch reads its compile switches at import: a run that sets one cannot be a fork of an importer."""
    (tmp_path / "speed_cases.py").write_text(
        "import json, os, sys\n"
        "spec = json.loads(sys.argv[1])\n"
        "print('RESULT ' + json.dumps({'wrapper': os.environ.get('TORCHINDUCTOR_CPP_WRAPPER'),"
        " 'caller': os.environ.get('FTIMG_TEST_CALLER'), 'name': spec['name']}))\n")
    monkeypatch.setattr(speed_benchmark, "HERE", tmp_path)
    monkeypatch.setenv("FTIMG_TEST_CALLER", "kept")
    monkeypatch.delenv("TORCHINDUCTOR_CPP_WRAPPER", raising=False)
    assert not speed_launch.can_fork({"name": "x", "env": {"TORCHINDUCTOR_CPP_WRAPPER": "1"}})
    result = speed_benchmark.run_one({"name": "x", "env": {"TORCHINDUCTOR_CPP_WRAPPER": "1"}}, timeout_s=60)
    assert (result["wrapper"], result["caller"], result["name"]) == ("1", "kept", "x")
    assert result["wall_s"] > 0
    plain = speed_launch.run_in_interpreter(tmp_path / "speed_cases.py", {"name": "y", "env": {}}, timeout_s=60)
    assert (plain["wrapper"], plain["caller"]) == (None, "kept")


def test_a_run_that_prints_no_result_reports_its_log(tmp_path):
    (tmp_path / "speed_cases.py").write_text("import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n")
    result = speed_launch.run_in_interpreter(tmp_path / "speed_cases.py", {"name": "z"}, timeout_s=60)
    assert result["error"] == "exit 3" and "boom" in result["log_tail"]
    json.dumps(result)


def reports_its_process(spec):
    print("to the log", flush=True)
    return {"pid": os.getpid(), "name": spec["name"]}


def fails(spec):
    os.write(2, b"from C\n")
    raise RuntimeError(f"{spec['name']} went wrong")


def hangs(spec):
    print("started", flush=True)
    time.sleep(60)


def test_a_forked_run_returns_its_result_from_its_own_process():
    result = speed_launch.run_forked(reports_its_process, {"name": "a"}, timeout_s=60)
    assert result["name"] == "a" and result["pid"] != os.getpid()


def test_a_forked_run_that_raises_reports_the_error_and_its_log():
    result = speed_launch.run_forked(fails, {"name": "b"}, timeout_s=60)
    assert result["error"] == "exit 1"
    assert "from C" in result["log_tail"] and "RuntimeError: b went wrong" in result["log_tail"]


def test_a_forked_run_past_its_time_is_stopped_with_its_log():
    started = time.time()
    result = speed_launch.run_forked(hangs, {"name": "c"}, timeout_s=2)
    assert time.time() - started < 30
    assert result["error"] == "stopped after 2 s" and "started" in result["log_tail"]
