"""Assignment 03 through the whole pipeline (``python -m autograde grade`` on real notebooks, in a kernel).

Slow: the solution (full marks), the unmodified release (zero, no grader error) and one notebook with a
bug in each task (it loses exactly the points of the checks aimed at those bugs).
"""

import json

import pytest

from tests.implementations.ensemble import ALL
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "03_ensemble"
IMPL = {(i.target, i.key): i.source for i in ALL}
MAX = 23



def test_solution_gets_full_marks():
    rep = report(ROOT / "solutions" / A / f"{A}.ipynb")
    assert rep["assignment"] == A and rep["max_score"] == MAX
    assert rep["score"] == MAX, json.dumps(rep["tests"], indent=1)
    assert not [n for n in rep["notes"] if "raised" in n], rep["notes"]


def test_unmodified_release_gets_zero_without_a_grader_error():
    rep = report(ROOT / "exercises" / A / f"{A}.ipynb")
    assert rep["score"] == 0 and rep["max_score"] == MAX
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    for gid in ("test_all_masks", "test_exact_ensemble_mean", "test_geometric_ensemble_mean", "test_mc_ensemble_mean"):
        assert "not implemented yet" in feedback[gid], feedback[gid]
    for q in range(1, 6):
        assert "not defined" in feedback[f"test_answer_q{q}"]
    assert not any("grader could not" in f for f in feedback.values())


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    answers = {
        "all_masks": "import itertools\n" + IMPL["all_masks", "itertools"],  # correct, written differently
        "exact_ensemble_mean": "import math\n" + IMPL["exact_ensemble_mean", "log_weights"],  # NaN at p = 0 and 1: contract only
        "geometric_ensemble_mean": IMPL["geometric_ensemble_mean", "nan_zero_weight"],  # NaN with zero probabilities: safety only
        "mc_ensemble_mean": IMPL["mc_ensemble_mean", "ignores_generator"],  # randomness only
        "answer_q1": 'answer_q1 = "b"', "answer_q2": 'answer_q2 = "b"', "answer_q3": 'answer_q3 = "a"', "answer_q4": 'answer_q4 = "c"',
        "answer_q5": 'answer_q5 = " A "',
    }
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s["test_all_masks"] == 3
    assert s["test_exact_ensemble_mean"] == 0 and s["test_exact_ensemble_mean_edge"] == 1
    assert s["test_geometric_ensemble_mean"] == 3 and s["test_geometric_ensemble_mean_safety"] == 0
    assert s["test_mc_ensemble_mean"] == 3 and s["test_mc_ensemble_mean_randomness"] == 0
    assert [s[f"test_answer_q{q}"] for q in range(1, 6)] == [1, 1, 0, 1, 1]
    assert rep["score"] == 14
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "NaN" in feedback["test_exact_ensemble_mean"]
    assert "0 * log 0" in feedback["test_geometric_ensemble_mean_safety"]
    assert "generator" in feedback["test_mc_ensemble_mean_randomness"]
    assert "is not right" in feedback["test_answer_q3"]
