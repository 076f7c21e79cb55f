"""How the grader rebuilds a submission from the instructor's source (no kernel needed)."""

import nbformat
import pytest

from autograde import notebook
from tests.notebooks import ROOT, release, submission

SOURCE = ROOT / "solutions" / "02_bernoulli_masks" / "02_bernoulli_masks.ipynb"


@pytest.fixture(scope="module")
def source():
    return notebook.read(SOURCE)


def ids(nb):
    return [notebook.grade_id(c) for c in nb.cells]


def probe_targets(nb):
    return [c.source.split("'")[1] for c in nb.cells if "run_plan_dir" in c.source]


def assemble(source, sub):
    return notebook.assemble(source, sub, lambda gid: f"/probes/{gid}")


def test_test_specs_come_from_the_source_with_points_and_visibility(source):
    specs = {s.grade_id: s for s in notebook.test_specs(source)}
    assert specs["test_bernoulli_mask"].checks == ["bernoulli_mask.contract"]
    assert specs["test_bernoulli_mask"].visible == ["bernoulli_mask.contract"]
    assert specs["test_bernoulli_mask_randomness"].visible == []
    assert sum(s.points for s in specs.values()) == 18  # 13 for the two functions, 5 for the practice questions
    assert specs["test_answer_q4"].checks == ["bernoulli_masks.q4"] and specs["test_answer_q4"].visible == []


def test_every_test_cell_becomes_a_probe_in_source_order(source):
    run = assemble(source, release("02_bernoulli_masks"))
    expected = [f"/probes/{s.grade_id}" for s in notebook.test_specs(source)]
    assert probe_targets(run) == expected
    assert not any("check(" in c.source for c in run.cells)


def test_student_edits_to_test_and_locked_cells_count_for_nothing(source):
    sub = release("02_bernoulli_masks")
    for cell in sub.cells:
        if notebook.grade_id(cell) in ("test_bernoulli_mask", "setup"):
            cell.source = "pass  # edited by the student"
            cell.metadata["nbgrader"]["points"] = 1000
    run = assemble(source, sub)
    assert "edited by the student" not in "".join(c.source for c in run.cells)
    assert "from autograde import check" in run.cells[0].source


def test_deleted_test_cells_are_put_back_after_their_predecessor(source):
    sub = release("02_bernoulli_masks")
    sub.cells = [c for c in sub.cells if not (notebook.grade_id(c) or "").startswith("test_")]
    run = assemble(source, sub)
    assert probe_targets(run) == [f"/probes/{s.grade_id}" for s in notebook.test_specs(source)]
    srcs = [c.source for c in run.cells]
    first_probe = next(i for i, s in enumerate(srcs) if "run_plan_dir" in s)
    assert "def bernoulli_mask" in srcs[first_probe - 1]


def test_relabelled_and_duplicated_cells_gain_nothing(source):
    sub = submission("02_bernoulli_masks", {"bernoulli_mask": "def bernoulli_mask(*a, **k):\n    return 1"})
    fake = nbformat.v4.new_code_cell("print('fake test')")
    fake.metadata["nbgrader"] = {"grade": True, "grade_id": "test_extra", "points": 50, "solution": False, "locked": True}
    dup = nbformat.v4.new_code_cell("pass")
    dup.metadata["nbgrader"] = {"grade": False, "grade_id": "bernoulli_mask", "solution": True}
    relabel = [c for c in sub.cells if notebook.grade_id(c) == "test_dropout_standard"][0]
    relabel.metadata["nbgrader"]["solution"] = True
    relabel.metadata["nbgrader"]["grade"] = False
    relabel.source = "pass"
    sub.cells += [fake, dup]
    run = assemble(source, sub)
    srcs = "".join(c.source for c in run.cells)
    assert "/probes/test_dropout_standard" in srcs  # the relabelled test is still the instructor's
    assert "/probes/test_extra" not in srcs  # a student's own 'test' is ordinary code
    assert srcs.count("def bernoulli_mask") == 1  # the first copy of a solution cell counts


def test_student_helper_cells_are_kept_in_place(source):
    sub = submission("02_bernoulli_masks", {}, extra_cells=[(2, "HELPER = 1")])
    run = assemble(source, sub)
    assert run.cells[1].source == "HELPER = 1"


def test_check_calls_are_read_without_running_the_cell():
    src = "x = 1\ncheck('a.b', f)\nimport autograde\nautograde.check(\"c.d\", g, device=D)\nother('e.f', h)"
    assert notebook.check_calls(src) == ["a.b", "c.d"]
