"""Storing grades in nbgrader's gradebook, so ``nbgrader export`` and the formgrader work unchanged.

nbgrader's ``Gradebook`` API does the writing (any SQLAlchemy URL; SQLite by default). Before the
first grade of an assignment is stored, its notebooks, cells and points must be in the gradebook;
``ensure_assignment`` puts them there by running nbgrader's own generate step against the database.
"""

from __future__ import annotations

import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

from .grade import assignments


class Gradebook:
    def __init__(self, db_url: str):
        from .release import venv_bin_on_path

        venv_bin_on_path()
        self.db_url = db_url
        self._ready: set[str] = set()

    def ensure_assignment(self, aid: str) -> None:
        if aid in self._ready:
            return
        from nbgrader.api import Gradebook as NbGradebook, MissingEntry

        with NbGradebook(self.db_url) as gb:
            try:
                known = bool(gb.find_assignment(aid).notebooks)
            except MissingEntry:
                known = False
        if not known:
            from .release import generate

            with tempfile.TemporaryDirectory() as tmp:
                generate(Path(tmp) / "exercises", only=aid, db_url=self.db_url)
        self._ready.add(aid)

    def record(self, report: dict) -> None:
        """Store one graded submission's automatic scores (replacing earlier ones)."""
        from nbgrader.api import Gradebook as NbGradebook

        aid, student = report["assignment"], report["student"]
        self.ensure_assignment(aid)
        notebook_id = assignments()[aid].source.stem
        with warnings.catch_warnings(), NbGradebook(self.db_url) as gb:
            # nbgrader 0.9.6 triggers SQLAlchemy 2.x autoflush warnings in its own code; they are harmless.
            warnings.simplefilter("ignore")
            gb.update_or_create_student(student)
            stamp = datetime.now(timezone.utc).replace(tzinfo=None)
            gb.update_or_create_submission(aid, student, timestamp=stamp)
            for t in report["tests"]:
                grade = gb.find_grade(t["grade_id"], notebook_id, aid, student)
                grade.auto_score = float(t["score"])
                grade.needs_manual_grade = False
            gb.db.commit()
