"""Assignment 05 through the whole pipeline: ``python -m autograde grade`` on real notebooks, in a kernel.

Three gradings: the solution (full marks), the release (zero, without a grader error) and one buggy
submission that must lose exactly the points of its mistakes.
"""

import json

import pytest

from tests.implementations.cnn_dropout import ALL
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "05_cnn_dropout"
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
        assert "not implemented yet" in t["feedback"] or "answer_q" in t["feedback"] and "not defined" in t["feedback"], t


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    """Element-wise masks instead of whole channels, DropBlock without renormalisation, one wrong answer."""
    answers = {
        "dropout2d": IMPL["dropout2d", "element_wise"],
        "dropblock2d": IMPL["dropblock2d", "no_renormalisation"],
        "answer_q1": 'answer_q1 = "a"',
        "answer_q2": "answer_q2 = 128",
        "answer_q3": 'answer_q3 = "c"',
        "answer_q4": "answer_q4 = 0.05",
        "answer_q5": 'answer_q5 = "A"',
    }
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s["test_dropout2d"] == 0 and s["test_dropout2d_sharing"] == 0
    assert s["test_dropblock2d"] == 0 and s["test_dropblock2d_blocks"] == 4  # the blocks themselves are right
    assert s["test_answer_q1"] == 0 and sum(s[f"test_answer_q{i}"] for i in range(2, 6)) == 4
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "element-wise dropout" in feedback["test_dropout2d"]
    assert "no renormalisation" in feedback["test_dropblock2d"]
