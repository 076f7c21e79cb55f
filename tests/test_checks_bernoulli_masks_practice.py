"""Assignment 02's practice questions: the checks, and agreement of chapter, notebook and answer key."""

import re

import pytest

from autograde import checks, notebook
from autograde.checks.bernoulli_masks_practice import ANSWERS
from autograde.probe import run_plan
from tests.notebooks import ROOT

A = "02_bernoulli_masks"
CHAPTER = (ROOT / "book" / f"{A}.md").read_text()
LABELS = {"q1": "ex-bm-count", "q2": "ex-bm-swapped", "q3": "ex-bm-classic", "q4": "ex-bm-grad", "q5": "ex-bm-nonlinear"}
LETTERS = ("a", "b", "c", "d")


def grade(q, value):
    c = checks.get(f"bernoulli_masks.{q}")
    plan = checks.make_plan(c, "cpu", 1)
    return checks.judge(c, plan, run_plan(plan, value))


def right(q):
    return ANSWERS[q][0][0]


def squash(text):
    return " ".join(text.split())


def exercise(label):
    m = re.search(r"```\{exercise\}\n:label: " + re.escape(label) + r"\n\n(.*?)\n```", CHAPTER, re.S)
    assert m, f"no exercise {label} in the chapter"
    return m.group(1)


def solution(label):
    m = re.search(r"```\{solution\} " + re.escape(label) + r"\n(.*?)\n```", CHAPTER, re.S)
    assert m, f"no solution for {label} in the chapter"
    return m.group(1)


def test_every_question_has_a_check_and_one_letter_answer():
    assert sorted(ANSWERS) == sorted(LABELS)
    for q in LABELS:
        assert f"bernoulli_masks.{q}" in checks.registry()
        assert len(ANSWERS[q][0]) == 1 and right(q) in LETTERS


@pytest.mark.parametrize("q", sorted(LABELS))
def test_the_right_letter_gets_the_point_in_any_case_or_spacing(q):
    for value in (right(q), right(q).upper(), f"  {right(q)} ", f"\t{right(q).upper()}\n"):
        assert grade(q, value).passed, value


@pytest.mark.parametrize("q", sorted(LABELS))
def test_wrong_letters_and_other_values_get_nothing(q):
    for value in [x for x in LETTERS if x != right(q)] + ["", f"({right(q)})", f"{right(q)} or a", 2, [right(q)]]:
        result = grade(q, value)
        assert not result.passed, value
        assert "is not right" in result.feedback() and "chapter 2" in result.feedback()


def test_a_non_plain_value_and_a_missing_variable_get_a_reason():
    assert "plain value" in grade("q1", object()).feedback() and not grade("q1", object()).passed
    # The grader looks the variable up in the notebook's globals: one never defined reaches run_plan as None.
    c = checks.get("bernoulli_masks.q2")
    plan = checks.make_plan(c, "cpu", 1)
    raw = run_plan(plan, None)
    assert raw.calls["answer"]["status"] == "missing"
    result = checks.judge(c, plan, raw)
    assert not result.passed
    assert "answer_q2 is not defined" in result.feedback() and "raise NotImplementedError()" in result.feedback()


@pytest.mark.parametrize("q", sorted(LABELS))
def test_the_chapter_toggle_states_the_key(q):
    letters = re.findall(r"\*\*\(([a-d])\)\.\*\*", solution(LABELS[q]))
    assert letters == [right(q)], (q, letters)


@pytest.mark.parametrize("q", sorted(LABELS))
def test_each_chapter_question_offers_four_options_once_each(q):
    found = re.findall(r"\(([a-d])\) ", exercise(LABELS[q]))
    assert found == list(LETTERS), (q, found)


def test_the_notebook_asks_the_chapter_questions_in_order_and_grades_them():
    src = notebook.read(ROOT / "solutions" / A / f"{A}.ipynb")
    by_id = {notebook.grade_id(c): c for c in src.cells}
    for n, q in enumerate(sorted(LABELS), start=1):
        asked = by_id[f"question_{q}"].source
        assert squash(asked) == squash(f"**Question {n}.** {exercise(LABELS[q])}")
        answer = by_id[f"answer_{q}"]
        assert notebook.is_solution(answer) and not notebook.is_locked(answer)
        assert f'answer_{q} = "{right(q)}"' in answer.source
    specs = {s.grade_id: s for s in notebook.test_specs(src)}
    for q in LABELS:
        assert specs[f"test_answer_{q}"].checks == [f"bernoulli_masks.{q}"]
        assert specs[f"test_answer_{q}"].points == 1 and specs[f"test_answer_{q}"].visible == []
    ids = [c.get("id") for c in src.cells]
    assert len(ids) == len(set(ids))


def test_the_released_questions_have_no_answers():
    release = notebook.read(ROOT / "exercises" / A / f"{A}.ipynb")
    by_id = {notebook.grade_id(c): c for c in release.cells}
    for q in LABELS:
        assert "raise NotImplementedError()" in by_id[f"answer_{q}"].source
        assert f"answer_{q} =" not in by_id[f"answer_{q}"].source
        assert "check(" not in by_id[f"test_answer_{q}"].source


def test_the_assignments_page_states_the_notebooks_points():
    page = (ROOT / "book" / "assignments.md").read_text()
    section = page.split("## Assignment 2:")[1].split("\n## ")[0]
    stated = re.search(r"\*\*Points:\*\* (\d+): `bernoulli_mask` (\d+), `dropout_standard` (\d+), and 1 for each", section)
    assert stated, section
    specs = notebook.test_specs(notebook.read(ROOT / "solutions" / A / f"{A}.ipynb"))
    by_target = {t: sum(s.points for s in specs if s.checks and s.checks[0].startswith(f"{t}.")) for t in ("bernoulli_mask", "dropout_standard")}
    total, mask_points, drop_points = (int(g) for g in stated.groups())
    assert total == sum(s.points for s in specs) == mask_points + drop_points + len(LABELS)
    assert (mask_points, drop_points) == (by_target["bernoulli_mask"], by_target["dropout_standard"])
