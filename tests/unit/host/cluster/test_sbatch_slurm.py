"""What ftimg reads from Slurm on a login node: partition sizes and GPUs (sinfo), job ids (sbatch),
the controller's config, plugstack.conf, and the node probe of `ftimg doctor --probe-node`."""

import pytest

from ftimg.cluster.slurm import (check_capacity, config_value, parse_job_id, parse_partitions, parse_probe,
                                 plugstack_entries, pyxis_in_plugstack)
from ftimg.errors import FtimgError

# `sinfo -h -s -o '%P %F'` and `sinfo -h -o '%R %G'` of a cluster with a CPU and a GPU partition.
SUMMARY = "debug* 0/2/0/2\ngpu 3/2/3/8\n"
GRES = "debug (null)\ngpu gpu:a100:8(S:0-1)\ngpu gpu:a100:4(S:0)\n"


def test_partitions_with_their_size_state_and_gpus():
    partitions = parse_partitions(SUMMARY, GRES)
    assert partitions["debug"].default and partitions["debug"].nodes == 2 and partitions["debug"].gpus_per_node == 0
    gpu = partitions["gpu"]
    assert not gpu.default and gpu.nodes == 8 and gpu.usable == 5 and gpu.gpus_per_node == 8


def test_the_default_partition_is_used_when_none_is_given():
    chosen, notes = check_capacity(parse_partitions(SUMMARY, GRES), None, 2, 0)
    assert chosen.name == "debug" and notes == []


def test_more_nodes_than_the_partition_has_is_an_error_before_submitting():
    with pytest.raises(FtimgError) as error:
        check_capacity(parse_partitions(SUMMARY, GRES), None, 3, 0)
    assert "--nodes 3: partition debug has 2 node(s), so the job could never start" in str(error.value)
    assert "gpu (8 nodes)" in str(error.value)


def test_gpus_the_nodes_do_not_have_are_an_error():
    with pytest.raises(FtimgError, match=r"--gpus-per-node 1: the nodes of partition debug have no GPUs"):
        check_capacity(parse_partitions(SUMMARY, GRES), "debug", 1, 1)
    with pytest.raises(FtimgError, match="have at most 8 GPU"):
        check_capacity(parse_partitions(SUMMARY, GRES), "gpu", 1, 16)


def test_an_unknown_partition_lists_the_known_ones():
    with pytest.raises(FtimgError, match=r"--partition a100: no such partition \(partitions: debug \(2 nodes\), "):
        check_capacity(parse_partitions(SUMMARY, GRES), "a100", 1, 0)


def test_nodes_that_are_down_make_a_note_not_an_error():
    _, notes = check_capacity(parse_partitions(SUMMARY, GRES), "gpu", 6, 8)
    assert notes == ["partition gpu has 5 of its 8 node(s) up; the job waits until enough are back"]


def test_no_default_partition_asks_for_one():
    with pytest.raises(FtimgError, match="no default partition; give --partition"):
        check_capacity(parse_partitions("gpu 0/2/0/2\n", ""), None, 1, 0)


@pytest.mark.parametrize("output, job_id", [("42\n", "42"), ("42;cluster\n", "42")])
def test_sbatch_parsable_output(output, job_id):
    assert parse_job_id(output) == job_id


def test_an_answer_without_a_job_id_is_an_error():
    with pytest.raises(FtimgError, match="sbatch answered 'Submitted batch job 42', not a job id"):
        parse_job_id("Submitted batch job 42")


def test_config_values_and_null():
    config = "PlugStackConfig         = /etc/slurm/plugstack.conf\nSlurmctldPlugstack      = (null)\n"
    assert config_value(config, "PlugStackConfig") == "/etc/slurm/plugstack.conf"
    assert config_value(config, "SlurmctldPlugstack") is None
    assert config_value(config, "Missing") is None


def test_pyxis_is_found_through_plugstack_includes(tmp_path):
    (tmp_path / "plugstack.conf.d").mkdir()
    (tmp_path / "plugstack.conf.d" / "pyxis.conf").write_text(
        "required /usr/local/lib/slurm/spank_pyxis.so  # container support\n")
    main = tmp_path / "plugstack.conf"
    main.write_text(f"# site plugins\noptional /usr/lib/slurm/other.so\ninclude {tmp_path}/plugstack.conf.d/*\n")
    assert plugstack_entries(main.read_text()) == (["optional /usr/lib/slurm/other.so"],
                                                   [f"{tmp_path}/plugstack.conf.d/*"])
    assert pyxis_in_plugstack(str(main)) == [
        f"{tmp_path}/plugstack.conf.d/pyxis.conf: required /usr/local/lib/slurm/spank_pyxis.so"]
    assert pyxis_in_plugstack(str(tmp_path / "missing.conf")) == []


def test_node_probe_output():
    assert parse_probe("node=n1\ndocker=20.10.24\napptainer=\nenroot=3.4.1\nnoise\n") == {
        "node": "n1", "docker": "20.10.24", "apptainer": "", "enroot": "3.4.1"}
