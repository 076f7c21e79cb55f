"""exercises/ is what nbgrader generates from solutions/, and students get clean notebooks."""

import json

import pytest

from autograde import release
from autograde.grade import assignments
from tests.notebooks import ROOT


@pytest.mark.slow
def test_release_is_in_sync_with_the_sources():
    problems = release.drift()
    assert not problems, "run 'make release':\n" + "\n".join(problems)


@pytest.mark.parametrize("aid", list(assignments()))
def test_released_notebooks_have_no_outputs_and_no_solutions(aid):
    for path in (ROOT / "exercises" / aid).glob("*.ipynb"):
        nb = json.loads(path.read_text())
        text = json.dumps(nb)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("aid", list(assignments()))
def test_graded_solution_cells_are_named_after_their_functions(aid):
    """The contract instructors rely on: a graded function's solution cell has grade_id == its name.

    Practice answers (plain variables ``answer_qN``) follow the same rule: their cells are ``answer_qN``.
    """
    from autograde import checks, notebook

    source = notebook.read(assignments()[aid].source)
    solution_ids = {notebook.grade_id(c) for c in source.cells if notebook.is_solution(c)}
    targets = {checks.get(n).target for s in notebook.test_specs(source) for n in s.checks}
    assert any(not t.startswith("answer_") for t in targets), "no graded function"
    assert targets <= solution_ids
