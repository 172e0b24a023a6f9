import json

import speed_benchmark


def test_a_run_gets_its_cases_environment_on_top_of_the_callers(tmp_path, monkeypatch):
    """The run's own process (here a stand-in speed_cases.py) sees the case's env and keeps the caller's."""
    (tmp_path / "speed_cases.py").write_text(
        "import json, os, sys\n"
        "spec = json.loads(sys.argv[1])\n"
        "print('RESULT ' + json.dumps({'wrapper': os.environ.get('TORCHINDUCTOR_CPP_WRAPPER'),"
        " 'caller': os.environ.get('FTIMG_TEST_CALLER'), 'name': spec['name']}))\n")
    monkeypatch.setattr(speed_benchmark, "HERE", tmp_path)
    monkeypatch.setenv("FTIMG_TEST_CALLER", "kept")
    monkeypatch.delenv("TORCHINDUCTOR_CPP_WRAPPER", raising=False)
    result = speed_benchmark.run_one({"name": "x", "env": {"TORCHINDUCTOR_CPP_WRAPPER": "1"}}, timeout_s=60)
    assert (result["wrapper"], result["caller"], result["name"]) == ("1", "kept", "x")
    plain = speed_benchmark.run_one({"name": "y", "env": {}}, timeout_s=60)
    assert (plain["wrapper"], plain["caller"]) == (None, "kept")


def test_a_run_that_prints_no_result_reports_its_log(tmp_path, monkeypatch):
    (tmp_path / "speed_cases.py").write_text("import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n")
    monkeypatch.setattr(speed_benchmark, "HERE", tmp_path)
    result = speed_benchmark.run_one({"name": "z"}, timeout_s=60)
    assert result["error"] == "exit 3" and "boom" in result["log_tail"]
    json.dumps(result)
