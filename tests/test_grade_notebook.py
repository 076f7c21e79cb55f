"""The whole pipeline: ``python -m autograde grade`` on real notebooks, in a kernel.

Slow (about 12 s a notebook): the solution, the release, a few buggy and tampering submissions, and
files that are not notebooks.
"""

import json
import subprocess
import sys

import pytest

from autograde.checks.bernoulli_masks_practice import ANSWERS
from tests.implementations.bernoulli_masks import ALL
from tests.notebooks import ROOT, release, submission, write

pytestmark = pytest.mark.slow
A = "02_bernoulli_masks"
IMPL = {(i.target, i.key): i.source for i in ALL}
GOOD = {"bernoulli_mask": IMPL["bernoulli_mask", "rand_ge"], "dropout_standard": IMPL["dropout_standard", "rand_mul"]}
FUNCTION_POINTS, MAX = 13, 18  # the two functions, and the whole assignment with its five practice questions
QUESTIONS = [f"test_answer_q{n}" for n in range(1, 6)]


def practice_answers(style=lambda letter: letter):
    """Answer cells for the five practice questions, each set to the key's letter written in ``style``."""
    return {f"answer_{q}": f"answer_{q} = {style(ANSWERS[q][0][0])!r}" for q in ANSWERS}


def grade(path, *args, timeout=300):
    proc = subprocess.run(
        [sys.executable, "-m", "autograde", "grade", str(path), "--json", "--device", "cpu", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )
    return proc


def report(path, *args):
    proc = grade(path, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def scores(rep):
    return {t["grade_id"]: t["score"] for t in rep["tests"]}


def test_solution_gets_full_marks_and_json_has_the_documented_shape():
    rep = report(ROOT / "solutions" / A / f"{A}.ipynb")
    assert {"assignment", "notebook", "score", "max_score", "tests", "seed"} <= rep.keys()
    assert rep["assignment"] == A and rep["max_score"] == MAX
    assert rep["score"] == rep["max_score"], json.dumps(rep["tests"], indent=1)
    for t in rep["tests"]:
        assert {"grade_id", "score", "max_score", "feedback"} <= t.keys()


def test_unmodified_release_gets_zero_without_a_grader_error():
    rep = report(ROOT / "exercises" / A / f"{A}.ipynb")
    assert rep["score"] == 0 and rep["max_score"] == MAX
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert all("not implemented yet" in f for g, f in feedback.items() if g not in QUESTIONS)
    assert all("no answer yet" in feedback[g] for g in QUESTIONS)


def test_other_correct_implementations_in_a_notebook_get_full_marks(tmp_path):
    answers = {"bernoulli_mask": "import numpy as np\n" + IMPL["bernoulli_mask", "numpy"],
               "dropout_standard": IMPL["dropout_standard", "masked_fill"],
               **practice_answers(lambda letter: f" {letter.upper()} ")}  # case and spaces do not matter
    rep = report(write(submission(A, answers), tmp_path, A), "--seed", "99")
    assert rep["score"] == MAX and rep["seed"] == 99, json.dumps(rep["tests"], indent=1)


def test_buggy_notebook_loses_exactly_the_points_of_its_mistakes(tmp_path):
    answers = {"bernoulli_mask": IMPL["bernoulli_mask", "swapped"], "dropout_standard": IMPL["dropout_standard", "in_place"]}
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s["test_bernoulli_mask"] == 0 and s["test_dropout_standard_safety"] == 0
    assert s["test_dropout_standard"] == 3  # the in-place bug keeps correct values
    assert all(s[g] == 0 for g in QUESTIONS)  # built from the release: the questions are unanswered
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "swapped" in feedback["test_bernoulli_mask"] and "modified" in feedback["test_dropout_standard_safety"]


TAMPERING = {
    "patched check": "import autograde, autograde.checks\nautograde.check = autograde.checks.check = lambda *a, **k: None\ncheck = autograde.check",
    "patched probe": "import autograde.probe\nautograde.probe.run_plan_dir = lambda *a, **k: None",
    "patched torch and AssertionError": "import torch, builtins\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\nbuiltins.AssertionError = type('Never', (Exception,), {})",
    "exits the kernel": "import os\nos._exit(0)",
}


@pytest.mark.parametrize("how", TAMPERING)
def test_tampering_buys_no_points(tmp_path, how):
    sub = submission(A, {}, extra_cells=[(2, TAMPERING[how])])
    for cell in sub.cells:  # and the student rewrites every test cell and its points
        md = cell.metadata.get("nbgrader", {})
        if md.get("grade"):
            cell.source, md["points"] = "pass", 100
    rep = report(write(sub, tmp_path, A))
    assert rep["score"] == 0 and rep["max_score"] == MAX


def test_infinite_loop_is_stopped_and_the_rest_is_still_graded(tmp_path):
    answers = {"bernoulli_mask": "while True:\n    pass", "dropout_standard": IMPL["dropout_standard", "rand_mul"]}
    rep = report(write(submission(A, answers), tmp_path, A), "--cell-timeout", "20")
    s = scores(rep)
    assert s["test_bernoulli_mask"] == 0 and s["test_dropout_standard"] == 3 and s["test_dropout_standard_safety"] == 3
    assert any("TimeoutError" in n or "Interrupt" in n or "timed out" in n.lower() for n in rep["notes"]), rep["notes"]


def test_a_function_that_kills_the_kernel_costs_only_its_own_tests(tmp_path):
    """The kernel is restarted without the cell that killed it, so the tests after it are still graded."""
    killer = "import os\n\n\ndef bernoulli_mask(shape, p, generator=None, device=None):\n    os._exit(1)\n"
    answers = {"bernoulli_mask": killer, "dropout_standard": GOOD["dropout_standard"], **practice_answers()}
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert s["test_bernoulli_mask"] == s["test_bernoulli_mask_randomness"] == s["test_bernoulli_mask_speed"] == 0
    assert s["test_dropout_standard"] + s["test_dropout_standard_safety"] + s["test_dropout_standard_speed"] == 7
    assert all(s[q] == 1 for q in QUESTIONS), s
    assert sum("restarted" in n for n in rep["notes"]) == 3, rep["notes"]


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"{not json", "not a Jupyter notebook"),
        ("{}".encode("utf-16"), "not UTF-8"),
        (b'{"cells": 3}', "not a Jupyter notebook"),
    ],
)
def test_unreadable_files_get_one_paragraph_and_exit_2(tmp_path, content, words):
    bad = tmp_path / f"{A}.ipynb"
    bad.write_bytes(content)
    proc = grade(bad)
    assert proc.returncode == 2
    assert words in proc.stderr and str(bad) in proc.stderr.replace("\n", " ")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_missing_file_and_unknown_assignment_are_explained(tmp_path):
    proc = grade(tmp_path / "nope.ipynb")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    nb = write(release(A), tmp_path, "renamed")
    proc = grade(nb, "--assignment", "99_nothing")
    assert proc.returncode == 2 and "There is no assignment" in proc.stderr


def test_assignment_is_found_from_cells_when_the_file_is_renamed(tmp_path):
    rep = report(write(submission(A, GOOD), tmp_path, "my homework (final)"))
    assert rep["assignment"] == A and rep["score"] == FUNCTION_POINTS and rep["max_score"] == MAX


def test_practice_questions_earn_a_point_each_and_wrong_answers_none(tmp_path):
    answers = practice_answers()
    answers["answer_q2"] = 'answer_q2 = "a"'  # wrong
    del answers["answer_q5"]  # left as released: raise NotImplementedError()
    rep = report(write(submission(A, answers), tmp_path, A))
    s = scores(rep)
    assert [s[g] for g in QUESTIONS] == [1, 0, 1, 1, 0] and rep["score"] == 3
    feedback = {t["grade_id"]: t["feedback"] for t in rep["tests"]}
    assert "is not right" in feedback["test_answer_q2"] and "no answer yet" in feedback["test_answer_q5"]
