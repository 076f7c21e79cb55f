"""Assignment 08 through the whole pipeline: ``python -m autograde grade`` on real notebooks, in a kernel.

Three gradings: the solution (full marks), the unmodified release (zero, without a grader error: the
read-only cells define the broken originals, so every task's feedback is its symptom) and a submission
with wrong repairs that must lose exactly the points of its mistakes.
"""

import json

import pytest

from tests.implementations.in_practice import WRITTEN
from tests.notebooks import ROOT, report, scores, submission, write

pytestmark = pytest.mark.slow
A = "08_in_practice"
MAX = 26
IMPL = {(i.target, i.key): i.source for i in WRITTEN}
TASKS = ("train_and_validate", "Classifier", "ScaledMLP", "BatchNormMLP", "mc_predict", "SequenceDropout", "PortedNet")


def test_solution_gets_full_marks():
    rep = report(ROOT / "solutions" / A / f"{A}.ipynb")
    assert rep["assignment"] == A and rep["max_score"] == MAX
    assert rep["score"] == MAX, json.dumps(rep["tests"], indent=1)
    assert not [n for n in rep["notes"] if "raised" in n], rep["notes"]


def test_unmodified_release_gets_zero_and_shows_each_symptom():
    rep = report(ROOT / "exercises" / A / f"{A}.ipynb")
    assert rep["score"] == 0 and rep["max_score"] == MAX
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert not any("grader could not" in f for f in feedback.values())
    assert "validation passes ran in training mode" in feedback["test_train_and_validate"]
    assert "training=self.training" in feedback["test_Classifier"]
    assert "double scaling" in feedback["test_ScaledMLP"]
    assert "variance shift" in feedback["test_BatchNormMLP"]
    assert "batch normalization" in feedback["test_mc_predict"]
    assert "device=x.device" in feedback["test_SequenceDropout"]
    assert "keep and drop look swapped" in feedback["test_PortedNet"]
    assert "not defined" in feedback["test_answer_q1"]


def test_wrong_repairs_lose_exactly_the_points_of_their_mistakes(tmp_path):
    answers = {
        "train_and_validate": IMPL["train_and_validate", "eval_never_back"],  # both checks
        "Classifier": IMPL["Classifier", "training_flag"],                    # right
        "ScaledMLP": IMPL["ScaledMLP", "classic"],                            # both checks
        "BatchNormMLP": IMPL["BatchNormMLP", "functional_after_bn"],          # right
        "mc_predict": IMPL["mc_predict", "same_mask"],                        # hidden check only
        "SequenceDropout": IMPL["SequenceDropout", "cached_buffer"],          # hidden check only
        "PortedNet": IMPL["PortedNet", "one_minus"],                          # right
        "answer_q1": 'answer_q1 = "b"', "answer_q2": 'answer_q2 = "A"', "answer_q3": 'answer_q3 = "a"',
        "answer_q4": 'answer_q4 = "d"', "answer_q5": 'answer_q5 = " b "',
    }
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s == {
        "test_train_and_validate": 0, "test_train_and_validate_contract": 0,
        "test_Classifier": 2, "test_Classifier_contract": 1,
        "test_ScaledMLP": 0, "test_ScaledMLP_contract": 0,
        "test_BatchNormMLP": 2, "test_BatchNormMLP_contract": 1,
        "test_mc_predict": 2, "test_mc_predict_contract": 0,
        "test_SequenceDropout": 2, "test_SequenceDropout_contract": 0,
        "test_PortedNet": 2, "test_PortedNet_contract": 1,
        "test_answer_q1": 1, "test_answer_q2": 1, "test_answer_q3": 0, "test_answer_q4": 1, "test_answer_q5": 1,
    }, json.dumps(rep["tests"], indent=1)
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "call model.train() again" in feedback["test_train_and_validate"]
    assert "double scaling" in feedback["test_ScaledMLP"]
    assert "one mask reused" in feedback["test_mc_predict_contract"]
