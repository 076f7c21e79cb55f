"""How many workers a class gets, with how many threads each, and whether they start kernels ahead:
from the cores this process may use (affinity and container quota), never the machine's raw count."""

import os
import shutil
import subprocess
import sys

import pytest

from autograde.batch import workers
from autograde.grade import GradingError
from tests.notebooks import ROOT


@pytest.mark.parametrize("jobs, cores, expected", [
    (None, 2, (2, 1, False)),  # default: a worker per core, one thread each, nothing started ahead
    (1, 2, (1, 2, True)),      # one worker on two cores: its kernel may use both, and it starts the next one ahead
    (2, 2, (2, 1, False)),
    (3, 2, (3, 1, False)),     # more workers than cores: never zero threads
    (1, 1, (1, 1, False)),     # one core (taskset -c 0, docker --cpus 1): no spare kernel competing for it
    (2, 8, (2, 4, True)),
])
def test_workers_share_the_usable_cores(jobs, cores, expected):
    assert workers(jobs, cores) == expected


def test_a_negative_job_count_is_refused_with_the_fix():
    with pytest.raises(GradingError, match="at least 1"):
        workers(-1, 2)


@pytest.mark.skipif(not shutil.which("taskset") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs taskset and at least two cores to pin the grader to one")
def test_usable_cores_follow_the_cpu_affinity_not_the_machine():
    """Pinned to one core (as taskset, a cpuset or a container does), the batch plans for one core; the old
    count (os.cpu_count) said every core of the machine and so started a spare kernel on a busy core."""
    code = "import os; from autograde.batch import usable_cores; print(usable_cores(), os.cpu_count())"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.split()
    assert out[0] == "1" and int(out[1]) >= 2, out


@pytest.mark.parametrize("argv, message", [
    (["batch", "x", "--jobs", "0"], "--jobs: 0 is too small"),
    (["grade", "x.ipynb", "--cell-timeout", "0"], "--cell-timeout: 0 is too small"),
    (["grade", "x.ipynb", "--restarts", "-2"], "--restarts: -2 is too small"),
    (["grade", "x.ipynb", "--memory-mb", "lots"], "'lots' is not a whole number"),
])
def test_counts_and_limits_below_their_minimum_are_refused_before_any_work(argv, message, capsys):
    from autograde.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_negative_job_count_on_the_command_line_exits_at_once():
    """It used to leave the worker pool waiting forever."""
    proc = subprocess.run([sys.executable, "-m", "autograde", "batch", "x", "--jobs", "-1"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "--jobs: -1 is too small" in proc.stderr, proc.stderr
