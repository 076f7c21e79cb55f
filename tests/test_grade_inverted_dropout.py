"""Assignment 04 through the whole pipeline (``python -m autograde grade`` on real notebooks, in a kernel).

Slow: the solution (full marks), the unmodified release (zero, no grader error) and one notebook with a
bug in each task (it loses exactly the points of the checks aimed at those bugs).
"""

import json

import pytest

from tests.implementations.inverted_dropout import ALL
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "04_inverted_dropout"
IMPL = {(i.target, i.key): i.source for i in ALL}
MAX = 20



def test_solution_gets_full_marks():
    rep = report(ROOT / "solutions" / A / f"{A}.ipynb")
    assert rep["assignment"] == A and rep["max_score"] == MAX
    assert rep["score"] == MAX, json.dumps(rep["tests"], indent=1)
    assert not [n for n in rep["notes"] if "raised" in n], rep["notes"]


def test_unmodified_release_gets_zero_without_a_grader_error():
    rep = report(ROOT / "exercises" / A / f"{A}.ipynb")
    assert rep["score"] == 0 and rep["max_score"] == MAX
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    for gid in ("test_dropout_inverted", "test_Dropout", "test_scale_for_inference"):
        assert "not implemented yet" in feedback[gid], feedback[gid]
    assert "not defined" in feedback["test_answer_q1"]
    assert not any("grader could not" in f for f in feedback.values())


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    answers = {
        "dropout_inverted": IMPL["dropout_inverted", "in_place"],  # correct values, modifies x: safety only
        "Dropout": IMPL["Dropout", "functional_default_training"],  # drops after eval(): contract only
        "scale_for_inference": IMPL["scale_for_inference", "scales_biases"],
        "answer_q1": 'answer_q1 = "b"', "answer_q2": 'answer_q2 = "b"', "answer_q3": 'answer_q3 = "a"', "answer_q4": 'answer_q4 = "a"',
        "answer_q5": 'answer_q5 = "B"',
    }
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s == {
        "test_dropout_inverted": 3, "test_dropout_inverted_safety": 0,
        "test_Dropout": 0, "test_Dropout_masks": 2,
        "test_scale_for_inference": 0, "test_scale_for_inference_more": 0,
        "test_answer_q1": 1, "test_answer_q2": 0, "test_answer_q3": 1, "test_answer_q4": 0, "test_answer_q5": 1,
    }, json.dumps(rep["tests"], indent=1)
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "modified" in feedback["test_dropout_inverted_safety"]
    assert "training=self.training" in feedback["test_Dropout"]
    assert "biases were scaled too" in feedback["test_scale_for_inference"]
