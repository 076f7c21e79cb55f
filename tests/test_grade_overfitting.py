"""Assignment 01 through the whole pipeline (``python -m autograde grade`` on real notebooks, in a kernel).

Slow: the solution (full marks), the unmodified release (zero, no grader error) and one notebook with a
bug in each task (it loses exactly the points of the checks aimed at those bugs).
"""

import json

import pytest

from tests.implementations.overfitting import ALL, ANSWERS
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "01_overfitting"
IMPL = {(i.target, i.key): i.source for i in ALL}
MAX = 21



def test_solution_gets_full_marks():
    rep = report(ROOT / "solutions" / A / f"{A}.ipynb")
    assert rep["assignment"] == A and rep["max_score"] == MAX
    assert rep["score"] == MAX, json.dumps(rep["tests"], indent=1)
    assert not [n for n in rep["notes"] if "raised" in n], rep["notes"]


def test_unmodified_release_gets_zero_without_a_grader_error():
    rep = report(ROOT / "exercises" / A / f"{A}.ipynb")
    assert rep["score"] == 0 and rep["max_score"] == MAX
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    for gid in ("test_l2_penalty", "test_l2_penalty_safety", "test_EarlyStopping", "test_EarlyStopping_more",
                "test_max_norm_", "test_max_norm__safety"):
        assert "not implemented yet" in feedback[gid], feedback[gid]
    for k in range(1, 6):
        assert "not defined" in feedback[f"test_answer_q{k}"]
    assert not any("grader could not" in f for f in feedback.values())


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    answers = {
        "l2_penalty": IMPL["l2_penalty", "detached"],  # right value, no gradient: the hidden test only
        "EarlyStopping": IMPL["EarlyStopping", "reference_not_copy"],  # restores the last weights: visible test
        "max_norm_": IMPL["max_norm_", "nan_for_zero_row"],  # NaN for a zero row: the hidden test only
        **{v: f"{v} = {value!r}" for v, value in ANSWERS.items()},
    }
    answers["answer_q2"] = 'answer_q2 = "a"'
    answers["answer_q5"] = 'answer_q5 = " B "'  # case and spaces do not matter
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s == {
        "test_l2_penalty": 3, "test_l2_penalty_safety": 0,
        "test_EarlyStopping": 0, "test_EarlyStopping_more": 0,
        "test_max_norm_": 3, "test_max_norm__safety": 0,
        "test_answer_q1": 1, "test_answer_q2": 0, "test_answer_q3": 1, "test_answer_q4": 1, "test_answer_q5": 1,
    }, json.dumps(rep["tests"], indent=1)
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "backward failed" in feedback["test_l2_penalty_safety"]
    assert "reference to the live tensors" in feedback["test_EarlyStopping"]
    assert "NaN" in feedback["test_max_norm__safety"]
    assert "is not right" in feedback["test_answer_q2"]
