"""Scores do not depend on how busy the grading machine is.

The speed checks time the student's call and PyTorch's reference alternately, both by the grader's clock,
so load slows both alike. Four gradings at once on a two-core machine (each kernel free to use every
core) must still give a correct submission every point, speed included.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.notebooks import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timing]
A = "02_bernoulli_masks"  # the assignment with speed checks


def test_correct_submissions_keep_every_point_on_an_oversubscribed_machine():
    n = 2 * (os.cpu_count() or 1)
    cmd = [sys.executable, "-m", "autograde", "grade", str(ROOT / "solutions" / A / f"{A}.ipynb"), "--json", "--device", "cpu"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    for rep in reports:
        lost = {t["grade_id"]: t["feedback"] for t in rep["tests"] if t["score"] != t["max_score"]}
        assert not lost, f"seed {rep['seed']}: {lost}"
