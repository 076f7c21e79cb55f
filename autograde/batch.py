"""Grading a whole class: ``python -m autograde batch PATH``.

PATH is an nbgrader course layout (``submitted/<student>/<assignment>/*.ipynb``, or the course root
holding ``submitted/``) or a folder of notebooks (the student id is the file name). Each submission
is graded in a worker process (``--jobs``), each with its own sandboxed kernel.

Durability: a submission's result is written to ``<results>/<student>/<assignment>/result.json``
with an atomic rename, after its grades reached the gradebook and its feedback was written, so a batch
killed at any moment (``kill -9`` included) keeps every result already written. A rerun skips every
submission whose content key (the notebook's bytes, the instructor's source, the grader version and
device) matches its stored result; ``--force`` regrades all.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .grade import GradingError, Limits, assignments, grade_notebook


@dataclass
class Submission:
    student: str
    assignment: str | None  # None: inferred by the grader from the notebook
    path: Path

    @property
    def label(self) -> str:
        return f"{self.student}/{self.assignment or self.path.stem}"


def discover(path: Path, assignment: str | None = None) -> tuple[list[Submission], Path]:
    """Submissions under ``path`` and the course root their feedback belongs under."""
    path = Path(path)
    if not path.exists():
        raise GradingError(f"{path} does not exist. Point 'autograde batch' at a folder of notebooks or an nbgrader course's submitted/ folder.")
    if (path / "submitted").is_dir():
        path = path / "submitted"
    nested = sorted(path.glob("*/*/*.ipynb"))
    if nested:
        subs = [
            Submission(nb.parent.parent.name, nb.parent.name, nb)
            for nb in nested
            if not any(part.startswith(".") for part in nb.relative_to(path).parts)
            and (assignment is None or nb.parent.name == assignment)
        ]
        return subs, path.parent
    flat = sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
    if not flat:
        raise GradingError(f"{path} holds no notebooks: expected <student>/<assignment>/*.ipynb (nbgrader) or *.ipynb files.")
    return [Submission(nb.stem, assignment, nb) for nb in flat], path.parent


def content_key(sub: Submission, device: str) -> str:
    h = hashlib.sha256()
    h.update(sub.path.read_bytes())
    known = assignments()
    for a in ([known[sub.assignment]] if sub.assignment in known else known.values()):
        h.update(a.source.read_bytes())
    h.update(f"{__version__}|{device}".encode())
    return h.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _grade_one(sub: Submission, device: str, seed: int | None, limits: Limits) -> dict:
    """Runs in a worker process. Always returns a result dict; errors become an 'error' field."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: a killed batch takes its workers along
    except Exception:
        pass
    t0 = time.monotonic()
    try:
        report = grade_notebook(sub.path, sub.assignment, device, seed=seed, limits=limits)
    except GradingError as exc:
        report = {"assignment": sub.assignment, "notebook": str(sub.path), "error": str(exc), "score": 0.0, "max_score": None, "tests": []}
    except Exception as exc:  # a grader bug must not lose the batch; it is reported per submission
        report = {"assignment": sub.assignment, "notebook": str(sub.path), "error": f"internal grader error: {type(exc).__name__}: {exc}", "score": 0.0, "max_score": None, "tests": []}
    report["seconds"] = round(time.monotonic() - t0, 2)
    return report


def result_path(results: Path, sub: Submission) -> Path:
    return results / sub.student / (sub.assignment or sub.path.stem) / "result.json"


def load_results(results: Path) -> list[dict]:
    out = []
    for p in sorted(results.glob("*/*/result.json")):
        try:
            out.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a half-written file cannot exist (atomic rename); a hand-edited broken one is skipped
    return out


def export_csv(results: Path, dest: Path) -> int:
    rows = load_results(results)
    test_ids = sorted({t["grade_id"] for r in rows for t in r.get("tests", [])})
    with open(dest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "score", "max_score", *test_ids, "seed", "device", "graded_at", "error"])
        for r in sorted(rows, key=lambda r: (r["student"], str(r.get("assignment")))):
            per = {t["grade_id"]: t["score"] for t in r.get("tests", [])}
            w.writerow([r["student"], r.get("assignment"), r.get("score"), r.get("max_score"),
                        *[per.get(t, "") for t in test_ids], r.get("seed", ""), r.get("device", ""),
                        r.get("graded_at", ""), r.get("error", "")])
    return len(rows)


@dataclass
class Summary:
    graded: int = 0
    skipped: int = 0
    errors: int = 0
    results: list | None = None

    def table(self) -> str:
        rs = [r for r in (self.results or []) if not r.get("error")]
        lines = [f"graded {self.graded}, unchanged and skipped {self.skipped}, errors {self.errors}"]
        if rs:
            fractions = [r["score"] / r["max_score"] for r in rs if r.get("max_score")]
            if fractions:
                lines.append(f"mean score {100 * statistics.mean(fractions):.1f}% of the maximum over {len(fractions)} graded now")
            slow = sorted(rs, key=lambda r: -r.get("seconds", 0))[:5]
            lines.append("slowest: " + ", ".join(f"{r['student']} {r['seconds']:.1f}s" for r in slow))
        for r in self.results or []:
            if r.get("error"):
                lines.append(f"error {r['student']}: {r['error']}")
        return "\n".join(lines)


def run(
    path: Path,
    assignment: str | None = None,
    jobs: int | None = None,
    device: str = "auto",
    results: Path | None = None,
    db_url: str | None = None,
    force: bool = False,
    seed: int | None = None,
    limits: Limits | None = None,
    progress: bool = True,
) -> Summary:
    from tqdm import tqdm

    from . import checks
    from .feedback import write_feedback
    from .gradebook import Gradebook

    subs, course = discover(path, assignment)
    device = checks.resolve_device(device)
    jobs = jobs or os.cpu_count() or 1
    limits = limits or Limits()
    if not limits.threads:
        limits.threads = max(1, (os.cpu_count() or 1) // jobs)  # no oversubscription across workers
    results = Path(results or course / "autograded")
    book = Gradebook(db_url) if db_url else None
    if book:  # prepare the gradebook before grading anything: a wrong --db fails now, not mid-batch
        try:
            for aid in {s.assignment for s in subs if s.assignment in assignments()} or set(assignments()):
                book.ensure_assignment(aid)
        except Exception as exc:
            raise GradingError(f"Cannot use the gradebook {db_url}: {type(exc).__name__}: {exc}. Check the --db URL (e.g. sqlite:///gradebook.db).") from None

    summary = Summary(results=[])
    todo = []
    for sub in subs:
        key = content_key(sub, device)
        rp = result_path(results, sub)
        if not force and rp.exists():
            try:
                if json.loads(rp.read_text(encoding="utf-8")).get("key") == key:
                    summary.skipped += 1
                    continue
            except ValueError:
                pass
        todo.append((sub, key))

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_grade_one, sub, device, seed, limits): (sub, key) for sub, key in todo}
        bar = tqdm(as_completed(futures), total=len(futures), unit="notebook", disable=not progress, desc="grading")
        for fut in bar:
            sub, key = futures[fut]
            try:
                report = fut.result()
            except Exception as exc:  # the worker process itself died
                report = {"assignment": sub.assignment, "notebook": str(sub.path), "error": f"grader worker crashed: {exc}", "score": 0.0, "max_score": None, "tests": [], "seconds": 0.0}
            report.update(student=sub.student, key=key, graded_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            report["assignment"] = report.get("assignment") or sub.assignment
            if report.get("error"):
                summary.errors += 1
            else:
                summary.graded += 1
                if book:
                    book.record(report)
                write_feedback(report, course / "feedback" / sub.student / report["assignment"] / f"{Path(report['notebook']).stem}.html")
            write_atomic(result_path(results, sub), json.dumps(report, indent=1))  # last: the commit marker
            summary.results.append(report)
            bar.set_postfix_str(sub.label)
    return summary
