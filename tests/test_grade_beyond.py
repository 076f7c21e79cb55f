"""Assignment 07 through the whole pipeline: ``python -m autograde grade`` on real notebooks, in a kernel.

Three gradings: the solution (full marks), the release (zero, without a grader error) and one buggy
submission that must lose exactly the points of its mistakes.
"""

import json

import pytest

from tests.implementations.beyond import ALL
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "07_beyond"
MAX = 25
IMPL = {(i.target, i.key): i.source for i in ALL}


def test_solution_gets_full_marks():
    rep = report(ROOT / "solutions" / A / f"{A}.ipynb")
    assert rep["assignment"] == A and rep["max_score"] == MAX
    assert rep["score"] == MAX, json.dumps(rep["tests"], indent=1)


def test_unmodified_release_gets_zero_without_a_grader_error():
    rep = report(ROOT / "exercises" / A / f"{A}.ipynb")
    assert rep["score"] == 0 and rep["max_score"] == MAX
    for t in rep["tests"]:
        assert "not implemented yet" in t["feedback"] or ("answer_q" in t["feedback"] and "not defined" in t["feedback"]), t
        assert "grader could not" not in t["feedback"], t


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    """Modes restored only at the top, keep and drop swapped, a Bernoulli mask for Gaussian noise, pairs of samples
    sharing a DropPath draw, and one wrong answer: each loses only the points of the checks aimed at it."""
    answers = {
        "mc_dropout_predict": IMPL["mc_dropout_predict", "restore_top_only"],
        "dropconnect_linear": IMPL["dropconnect_linear", "swapped"],
        "gaussian_dropout": IMPL["gaussian_dropout", "bernoulli_mask"],
        "drop_path": IMPL["drop_path", "pairs_share"],
        "answer_q1": 'answer_q1 = "a"',
        "answer_q2": 'answer_q2 = "C"',
        "answer_q3": 'answer_q3 = " c "',
        "answer_q4": 'answer_q4 = "b"',
        "answer_q5": 'answer_q5 = "b"',
    }
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s == {
        "test_mc_dropout_predict": 4, "test_mc_dropout_predict_more": 0,
        "test_dropconnect_linear": 0, "test_dropconnect_linear_safety": 2,
        "test_gaussian_dropout": 0, "test_gaussian_dropout_safety": 2,
        "test_drop_path": 2, "test_drop_path_safety": 0,
        "test_answer_q1": 0, "test_answer_q2": 1, "test_answer_q3": 1, "test_answer_q4": 1, "test_answer_q5": 1,
    }, json.dumps(rep["tests"], indent=1)
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "cannot restore a model whose modules were in different modes" in feedback["test_mc_dropout_predict_more"]
    assert "keep and drop look swapped" in feedback["test_dropconnect_linear"]
    assert "that is a Bernoulli mask" in feedback["test_gaussian_dropout"]
    assert "neighbouring samples" in feedback["test_drop_path_safety"]
