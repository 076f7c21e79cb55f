"""Reading nbgrader notebooks and assembling the notebook the grader runs.

Why not nbgrader's own ``autograde``: it needs a course directory and gradebook, runs the instructor's
test cells inside the student's kernel (where their verdicts can be patched), and zeroes a test cell on
any stderr output. Here the instructor's source notebook is the only authority for which cells are
tests, what they check and what they are worth; test cells are replaced by probe cells whose records
are judged outside the student's process.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

PROBE_CELL = (
    "import autograde.probe as _autograde_probe\n"
    "_autograde_probe.run_plan_dir({folder!r}, globals())\n"
)
TIMED_CELL = "_autograde_probe.run_timed({key!r})\n"


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    gid = meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_test(cell) -> bool:
    m = meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def is_solution(cell) -> bool:
    return bool(meta(cell).get("solution"))


def is_locked(cell) -> bool:
    return bool(meta(cell).get("locked"))


def check_calls(source: str) -> list[str]:
    """The check names in a test cell: the first argument of every ``check("name", ...)`` call."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        first = node.args[0]
        if called == "check" and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.append(first.value)
    return names


@dataclass
class TestSpec:
    grade_id: str
    points: float
    checks: list[str]
    visible: list[str] = field(default_factory=list)  # checks a student can see (outside hidden regions)


def test_specs(source_nb) -> list[TestSpec]:
    specs = []
    for cell in source_nb.cells:
        if not is_test(cell):
            continue
        src = cell.source
        hidden_start = src.find("### BEGIN HIDDEN TESTS")
        visible_src = src if hidden_start < 0 else src[:hidden_start]
        specs.append(
            TestSpec(
                grade_id=grade_id(cell),
                points=float(meta(cell).get("points", 0)),
                checks=check_calls(src),
                visible=check_calls(visible_src),
            )
        )
    return specs


def assemble(source_nb, submission_nb, probe_dir_for, timed_for=lambda gid: ()) -> nbformat.NotebookNode:
    """The notebook to execute: the student's code, with every locked or test cell taken from the source.

    - a cell whose grade_id is a solution cell of the source: the student's code;
    - a cell whose grade_id is a locked or test cell of the source: the source's version (tests become
      probe cells); a student's copy, edit or re-labelling of it counts for nothing;
    - any other code cell the student added: kept in place (it runs before the tests, as in nbgrader);
    - a source cell the student deleted: put back after the cell that precedes it in the source.

    A probe cell carries ``{"autograde": {"probe": grade_id}}`` in its metadata. After it come its timing
    cells, one per repeat (plus a first, uncounted warm-up) of each ``(key, repeats)`` in
    ``timed_for(grade_id)``; each holds a single call, so the grader's clock can time it from outside.
    """
    src_cells = [c for c in source_nb.cells if c.cell_type == "code"]
    by_id = {grade_id(c): c for c in src_cells if grade_id(c)}
    authority = {gid for gid, c in by_id.items() if is_locked(c) or is_test(c)}
    solution_ids = {gid for gid, c in by_id.items() if is_solution(c) and gid not in authority}

    def source_version(cell):
        if is_test(cell):
            gid = grade_id(cell)
            cells = [nbformat.v4.new_code_cell(PROBE_CELL.format(folder=str(probe_dir_for(gid))),
                                               metadata={"autograde": {"probe": gid}})]
            for key, repeats in timed_for(gid):
                cells += [nbformat.v4.new_code_cell(TIMED_CELL.format(key=key), metadata={"autograde": {
                    "timed": key, "warmup": i == 0}}) for i in range(repeats + 1)]
            return cells
        return [nbformat.v4.new_code_cell(cell.source)]

    out: list[list] = []  # groups of cells: a test cell becomes its probe cell and its timing cells
    placed: dict[str, int] = {}
    for cell in submission_nb.cells:
        gid = grade_id(cell)
        if gid in placed:
            continue  # a duplicate of a graded cell: only its first appearance counts
        if gid in authority:
            placed[gid] = len(out)
            out.append(source_version(by_id[gid]))
        elif gid in solution_ids:
            placed[gid] = len(out)
            out.append([nbformat.v4.new_code_cell(cell.source if cell.cell_type == "code" else "")])
        elif cell.cell_type == "code":
            out.append([nbformat.v4.new_code_cell(cell.source)])
    # Put back what the student deleted, right after its predecessor in the source.
    previous = None
    for cell in src_cells:
        gid = grade_id(cell)
        if gid in authority and gid not in placed:
            at = placed[previous] + 1 if previous in placed else 0
            out.insert(at, source_version(cell))
            placed = {k: (v + 1 if v >= at else v) for k, v in placed.items()}
            placed[gid] = at
        if gid in placed:
            previous = gid
    nb = nbformat.v4.new_notebook(cells=[c for group in out for c in group])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def read(path: Path):
    """Read a notebook of any nbformat version as version 4. Raises ValueError with the cause in words."""
    return parse(path.read_bytes())


def parse(raw: bytes):
    """A notebook from its bytes, as version 4. Raises ValueError with the cause in words."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    if not text.strip():
        raise ValueError("the file is empty")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several types for JSON and schema problems
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"it is not a Jupyter notebook ({first[:200]})") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("it is not a Jupyter notebook (no list of cells)")
    return nb
