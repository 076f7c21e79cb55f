"""Assignment 09 through the whole pipeline: ``python -m autograde grade`` on real notebooks, in a kernel.

Three gradings: the solution (full marks), the release (zero, without a grader error) and one buggy
submission that must lose exactly the points of its mistakes.
"""

import json

import pytest

from tests.implementations.cost import ALL
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "09_cost"
MAX = 23
IMPL = {(i.target, i.key): i.source for i in ALL}


def test_solution_gets_full_marks():
    rep = report(ROOT / "solutions" / A / f"{A}.ipynb")
    assert rep["assignment"] == A and rep["max_score"] == MAX
    assert rep["score"] == MAX, json.dumps(rep["tests"], indent=1)


def test_unmodified_release_gets_zero_without_a_grader_error():
    rep = report(ROOT / "exercises" / A / f"{A}.ipynb")
    assert rep["score"] == 0 and rep["max_score"] == MAX
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    for gid in ("test_packed_mask", "test_unpack_mask", "test_lean_dropout", "test_lean_dropout_memory"):
        assert "not implemented yet" in feedback[gid], feedback[gid]
    assert "not defined" in feedback["test_answer_q1"]
    assert not any("grader could not" in f for f in feedback.values())


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    """Big-endian bits, an unpack that loses the last partial byte, a mask saved after all, two wrong answers."""
    answers = {
        "packed_mask": IMPL["packed_mask", "big_endian"],  # the random properties are right: randomness keeps its 3
        "unpack_mask": IMPL["unpack_mask", "last_byte_lost"],  # every shape of both checks has a partial last byte
        "lean_dropout": IMPL["lean_dropout", "saves_the_mask"],  # right values and gradients: only the memory check fails
        "answer_q1": 'answer_q1 = "a"', "answer_q2": 'answer_q2 = "A"', "answer_q3": 'answer_q3 = "b"',
        "answer_q4": 'answer_q4 = "d"', "answer_q5": 'answer_q5 = " d "',
    }
    rep = report(write(submission(A, answers), tmp_path, A))
    assert scores(rep) == {
        "test_packed_mask": 0, "test_packed_mask_randomness": 3,
        "test_unpack_mask": 0, "test_unpack_mask_more": 0,
        "test_lean_dropout": 3, "test_lean_dropout_memory": 0, "test_lean_dropout_safety": 3,
        "test_answer_q1": 0, "test_answer_q2": 1, "test_answer_q3": 1, "test_answer_q4": 0, "test_answer_q5": 1,
    }, json.dumps(rep["tests"], indent=1)
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "big-endian order" in feedback["test_packed_mask"]
    assert "the last partial byte was lost" in feedback["test_unpack_mask"]
    assert "a bool mask" in feedback["test_lean_dropout_memory"]
