"""Generating the student release (``exercises/``) from the instructor sources (``solutions/``).

nbgrader does the work (clearing solutions and hidden tests, locking cells, checksums). This module
only runs it in a scratch course directory, configured by the repository's ``nbgrader_config.py``, so
that a release can be produced for comparison without touching the working tree or its gradebook.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .grade import COURSE_ROOT, assignments


def venv_bin_on_path() -> None:
    """nbgrader runs ``alembic`` as a subprocess: this environment's bin/ must be on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _config(course: Path, db_url: str | None = None):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_ROOT)).load_config()
    merged = Config(cfg)
    merged.CourseDirectory.root = str(course)
    merged.CourseDirectory.db_url = db_url or f"sqlite:///{course / 'gradebook.db'}"
    merged.Exchange.root = str(course / "exchange")
    return merged


def generate(dest: Path, root: Path = COURSE_ROOT, only: str | None = None, db_url: str | None = None) -> Path:
    """Write the release of every assignment (or just ``only``) under ``dest``, one folder each; return ``dest``.

    With ``db_url``, nbgrader also records the assignments' notebooks, cells and points in that gradebook,
    which is what ``autograde batch --db`` needs before it can store grades there.
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    venv_bin_on_path()
    with tempfile.TemporaryDirectory(prefix="autograde-release-") as tmp:
        course = Path(tmp)
        shutil.copytree(root / "solutions", course / "solutions")
        config = _config(course, db_url)
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        for aid in assignments(root):
            if only and aid != only:
                continue
            result = api.generate_assignment(aid, force=True, create=True)
            if not result.get("success"):
                raise RuntimeError(f"nbgrader could not generate {aid}:\n{result.get('log', '')}\n{result.get('error', '')}")
        dest.mkdir(parents=True, exist_ok=True)
        for folder in (course / "exercises").iterdir():
            target = dest / folder.name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(folder, target)
    return dest


def normalised(path: Path) -> dict:
    """A notebook's JSON with nothing volatile, for comparing two releases."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def drift(root: Path = COURSE_ROOT) -> list[str]:
    """Files in ``exercises/`` that differ from what generation produces now (empty when in sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp) / "exercises", root)
        problems = []
        want = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        have = {
            p.relative_to(root / "exercises")
            for p in (root / "exercises").rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        }
        problems += [f"missing from exercises/: {p}" for p in sorted(want - have)]
        problems += [f"not produced by generation: exercises/{p}" for p in sorted(have - want)]
        for rel in sorted(want & have):
            a, b = fresh / rel, root / "exercises" / rel
            same = normalised(a) == normalised(b) if rel.suffix == ".ipynb" else a.read_bytes() == b.read_bytes()
            if not same:
                problems.append(f"differs from its source: exercises/{rel}")
        return problems


# --- what students may see ------------------------------------------------------------------------
# The student repository: the book's sources, the released notebooks, the grading package (the visible
# tests call its checks), the shared chapter helpers and the environment files. Never solutions/, the
# tests (their implementations include correct answers), the gradebook, nbgrader's course config or the
# benchmarks.
STUDENT_FILES = ("book", "exercises", "autograde", "dropout_lib", "_config.yml", "_toc.yml", "requirements.txt",
                 "pyproject.toml", "package.json", "package-lock.json", "LICENSE")
STUDENT_README = """# Dropout, the course book: student copy

The chapters are in `book/` (build them with `make book`, or read the published book), and each
chapter's assignment is in `exercises/NN_topic/NN_topic.ipynb` (chapter N goes with assignment N).

```sh
make lab     # creates .venv from the pinned requirements.txt and opens JupyterLab on exercises/
make book    # builds the HTML book into _build/html
```

Fill in every `# YOUR CODE HERE`, run the visible test cell under each function (a passing test prints
lines starting with ✓; a failing one says what was expected, what was seen and the likely mistake),
then *Kernel → Restart Kernel and Run All Cells* and submit the `.ipynb` file. Hidden tests extend the
visible ones when your work is graded; each task's text states its whole contract.
"""
STUDENT_MAKEFILE = """PYTHON ?= $(shell command -v python3.11 || command -v python3)
BIN := .venv/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
.PHONY: lab book
$(BIN)/.installed: requirements.txt pyproject.toml
\t@test -x $(BIN)/python || $(PYTHON) -m venv .venv
\t$(BIN)/python -m pip install --quiet -r requirements.txt
\t$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps -e .
\t@touch $@
lab: $(BIN)/.installed
\t$(BIN)/jupyter lab exercises/
book: $(BIN)/.installed
\tnpm ci --ignore-scripts --no-audit --no-fund --loglevel=error
\tmkdir -p book/_static/vendor/html-manager && cp node_modules/@jupyter-widgets/html-manager/dist/* book/_static/vendor/html-manager/
\t$(BIN)/jupyter-book build . -W -n --keep-going
"""


def student_repo(dest: Path, root: Path = COURSE_ROOT) -> Path:
    """Write the student repository to ``dest`` (which must not exist yet) and return it.

    The release in ``exercises/`` is generated afresh from ``solutions/`` by nbgrader, so what students get
    is never a stale or hand-edited copy.
    """
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists: choose a new folder for the student repository")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "vendor", "_build")
    dest.mkdir(parents=True)
    for name in STUDENT_FILES:
        src = root / name
        if name == "exercises":
            generate(dest / "exercises", root)
        elif src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    (dest / "README.md").write_text(STUDENT_README, encoding="utf-8")
    (dest / "Makefile").write_text(STUDENT_MAKEFILE, encoding="utf-8")
    (dest / ".gitignore").write_text(".venv/\n_build/\nnode_modules/\nbook/_static/vendor/\n", encoding="utf-8")
    return dest
