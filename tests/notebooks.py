"""Building submission notebooks for the tests: the released notebook with answers pasted in."""

import copy
from pathlib import Path

import nbformat

from autograde import notebook

ROOT = Path(__file__).resolve().parents[1]


def release(assignment: str):
    return nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)


def submission(assignment: str, answers: dict[str, str], extra_cells: list[tuple[int, str]] = (), nb=None):
    """The release with solution cells (by grade_id) replaced and extra code cells inserted at positions."""
    nb = copy.deepcopy(nb or release(assignment))
    for cell in nb.cells:
        gid = notebook.grade_id(cell)
        if gid in answers:
            cell.source = answers[gid]
    for at, src in sorted(extra_cells, reverse=True):
        nb.cells.insert(at, nbformat.v4.new_code_cell(src))
    return nb


def write(nb, folder: Path, name: str) -> Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def report(path: Path, *args: str, timeout: int = 600) -> dict:
    """``python -m autograde grade PATH --json --device cpu ARGS``'s result; the command must succeed."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "autograde", "grade", str(path), "--json", "--device", "cpu", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def scores(rep: dict) -> dict[str, float]:
    """grade_id -> points earned, from a grade report."""
    return {t["grade_id"]: t["score"] for t in rep["tests"]}
