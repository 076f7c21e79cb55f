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


def _solution_lines(aid) -> set[str]:
    """The substantial lines inside every BEGIN SOLUTION / BEGIN HIDDEN TESTS region of an assignment's source."""
    from autograde import notebook

    lines = set()
    for cell in notebook.read(assignments()[aid].source).cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= 25:
                lines.add(line.strip())
    return lines


@pytest.mark.slow
def test_student_repository_holds_no_solution_and_no_hidden_test(tmp_path):
    """`autograde release --student-repo DIR`: the book, the released notebooks and the grading package, and
    not one line of an instructor's solution or hidden test, nor the tests' correct implementations."""
    import subprocess
    import sys

    dest = tmp_path / "students"
    proc = subprocess.run([sys.executable, "-m", "autograde", "release", "--student-repo", str(dest)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not (dest / "solutions").exists() and not (dest / "tests").exists()
    assert (dest / "book" / "intro.md").is_file() and (dest / "autograde" / "checks" / "__init__.py").is_file()
    released = {p.parent.name for p in (dest / "exercises").glob("*/*.ipynb")}
    assert released == set(assignments())
    # The book is public and teaches the code it derives, and the release gives students its scaffolding:
    # a solution line that also appears there is no secret. Every other one must appear nowhere.
    files = [p for p in dest.rglob("*") if p.is_file() and p.suffix in {".py", ".ipynb", ".md", ".txt", ".yml", ".json", ".toml", ""}]
    public = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files if p.relative_to(dest).parts[0] in ("book", "exercises"))
    secret = {line for aid in assignments() for line in _solution_lines(aid) if line not in public}
    assert len(secret) > 20  # the scan below would pass vacuously if no private solution line were found
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix in (".ipynb", ".md"):  # the grader's own code names the markers it parses
            assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path
        leaked = [line for line in secret if line in text]
        assert not leaked, f"{path.relative_to(dest)} holds solution or hidden-test lines: {leaked[:3]}"
    assert subprocess.run([sys.executable, "-m", "autograde", "release", "--student-repo", str(dest)],
                          capture_output=True, text=True, cwd=ROOT).returncode == 2  # never overwrites
