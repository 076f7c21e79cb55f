"""Assignment 06 through the whole pipeline: ``python -m autograde grade`` on real notebooks, in a kernel.

Three gradings: the solution (full marks), the release (zero, without a grader error) and one buggy
submission that must lose exactly the points of its mistakes.
"""

import json

import pytest

from tests.implementations.rnn_dropout import ALL
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "06_rnn_dropout"
MAX = 24
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


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    """A fresh mask per time step, a cell without a recurrent mask, zoneout with its roles swapped, one wrong answer."""
    answers = {
        "locked_dropout": IMPL["locked_dropout", "fresh_each_step"],
        "VariationalRNNCell": IMPL["VariationalRNNCell", "no_recurrent_mask"],
        "zoneout": IMPL["zoneout", "swapped_roles"],
        "answer_q1": 'answer_q1 = "a"',
        "answer_q2": 'answer_q2 = "B"',
        "answer_q3": 'answer_q3 = "a"',
        "answer_q4": "answer_q4 = 3200",
        "answer_q5": 'answer_q5 = " d "',
    }
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    # Fresh masks per step break only the time sharing; the (B, H) decisions at one step are still fine.
    assert s["test_locked_dropout"] == 0 and s["test_locked_dropout_randomness"] == 2 and s["test_locked_dropout_safety"] == 2
    assert s["test_VariationalRNNCell"] == 0 and s["test_VariationalRNNCell_randomness"] == 0
    # Swapped roles keep h_prev with probability 1 - p: wrong rate, but independent, fresh and differentiable.
    assert s["test_zoneout"] == 0 and s["test_zoneout_randomness"] == 2 and s["test_zoneout_safety"] == 1
    assert s["test_answer_q1"] == 0 and sum(s[f"test_answer_q{i}"] for i in range(2, 6)) == 4
    assert rep["score"] == 2 + 2 + 2 + 1 + 4
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "fresh mask seems to be drawn at every time step" in feedback["test_locked_dropout"]
    assert "unmasked" in feedback["test_VariationalRNNCell"]
    assert "look swapped" in feedback["test_zoneout"]
