"""Grading a whole class: ``python -m autograde batch PATH``.

PATH is an nbgrader course layout (``submitted/<student>/<assignment>/*.ipynb``, or the course root
holding ``submitted/``) or a flat folder of notebooks (the student id is the file name; ``--assignment``
is then required: the grader does not guess a class's assignment from cell overlap).

Workers. Each submission is graded in a worker process of a ``pebble`` pool (``--jobs``), each with its
own sandboxed kernel. A worker that dies (killed, out of memory) costs only the submission it was
grading: the pool starts a new worker and the other submissions go on. Every submission has a deadline
enforced by this parent process (the notebook's total time limit plus a margin for set-up and judging);
past it, the worker is killed and the submission reported. Imports, the instructor's source notebooks and
the sandbox check are done once per worker, not once per submission. With fewer workers than cores, while a
worker grades one submission it starts the kernel for its next one (``kernel.prestart``): still a fresh
sandboxed kernel, in its own scratch folder and cgroup, for every submission, with its start-up and imports
done on a core that would otherwise idle.

Durability. A submission's result is written to ``<results>/<student>/<assignment>/result.json`` with an
atomic rename, after its grades reached the gradebook and its feedback was written, so a batch killed at
any moment (``kill -9`` included) keeps every result already written. A rerun skips a submission only when
its stored result is a grade (never an error) with the same content key (the notebook's bytes, the
instructor's source, the grader version and device); ``--force`` regrades all.

Discovery takes regular files only: a folder, FIFO, socket or device named ``*.ipynb`` is reported and
not graded, and a symlink is followed only when it stays inside the student's own folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
import statistics
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, safe_io
from .grade import MAX_NOTEBOOK_BYTES, GradingError, Limits, assignments, grade_notebook

DEADLINE_MARGIN = 180  # seconds a worker gets beyond the notebook's own time limit (set-up, judging, writing)


@dataclass
class Submission:
    student: str
    assignment: str | None
    path: Path
    refused: str | None = None  # why discovery would not grade this entry

    @property
    def label(self) -> str:
        return f"{self.student}/{self.assignment or self.path.stem}"


def _entry(path: Path, student_root: Path, student: str, assignment: str | None) -> Submission:
    """One ``*.ipynb`` entry: graded if it is a regular file (or a link to one inside ``student_root``)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Submission(student, assignment, path, f"cannot be read ({exc.strerror})")
    if stat.S_ISLNK(st.st_mode):
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return Submission(student, assignment, path, "is a broken symbolic link")
        inside = student_root.resolve()
        if inside not in target.parents:
            return Submission(student, assignment, path, "is a symbolic link that leaves the student's own folder")
        if not target.is_file():
            return Submission(student, assignment, path, "is a symbolic link to something that is not a regular file")
        return Submission(student, assignment, target)
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        return Submission(student, assignment, path, f"is {kind}, not a notebook file")
    return Submission(student, assignment, path)


def discover(path: Path, assignment: str | None = None) -> tuple[list[Submission], Path]:
    """Submissions under ``path`` (refused entries included, with the reason) and the course root."""
    path = Path(path)
    if not path.is_dir():
        raise GradingError(f"{path} is not a folder. Point 'autograde batch' at a folder of notebooks or an nbgrader course's submitted/ folder.")
    if (path / "submitted").is_dir():
        path = path / "submitted"
    visible = lambda p: not p.name.startswith(".")  # noqa: E731
    subs: list[Submission] = []
    for student_dir in sorted(filter(visible, path.iterdir())):
        if student_dir.is_symlink() or not student_dir.is_dir():
            continue
        for adir in sorted(filter(visible, student_dir.iterdir())):
            if adir.is_symlink() or not adir.is_dir() or (assignment and adir.name != assignment):
                continue
            subs += [_entry(nb, student_dir, student_dir.name, adir.name) for nb in sorted(filter(visible, adir.glob("*.ipynb")))]
    if subs:
        return subs, path.parent
    flat = sorted(filter(visible, path.glob("*.ipynb")))
    if not flat:
        raise GradingError(f"{path} holds no notebooks: expected <student>/<assignment>/*.ipynb (nbgrader) or *.ipynb files.")
    if not assignment:
        raise GradingError(f"{path} is a flat folder of notebooks: say which assignment they answer with --assignment ID "
                           f"(one of {', '.join(assignments()) or 'none'}); a batch never guesses it.")
    return [_entry(nb, path, nb.stem, assignment) for nb in flat], path.parent


def content_key(sub: Submission, device: str) -> str:
    h = hashlib.sha256()
    h.update(safe_io.regular_file(sub.path, MAX_NOTEBOOK_BYTES))
    known = assignments()
    for a in ([known[sub.assignment]] if sub.assignment in known else known.values()):
        h.update(a.source.read_bytes())
    h.update(f"{__version__}|{device}".encode())
    return h.hexdigest()


write_atomic = safe_io.write_atomic  # kept under its old name for callers outside the package


def _grade_one(sub: Submission, device: str, seed: int | None, limits: Limits, prestart: bool = False) -> dict:
    """Runs in a worker process. Always returns a result dict; errors become an 'error' field."""
    t0 = time.monotonic()
    try:
        report = grade_notebook(sub.path, sub.assignment, device, seed=seed, limits=limits, prestart_next=prestart)
    except GradingError as exc:
        report = _error(sub, str(exc))
    except Exception as exc:  # a grader bug must not lose the batch; it is reported per submission
        report = _error(sub, f"internal grader error: {type(exc).__name__}: {exc}")
    report["seconds"] = round(time.monotonic() - t0, 2)
    return report


def _error(sub: Submission, message: str) -> dict:
    return {"assignment": sub.assignment, "notebook": str(sub.path), "error": message, "score": 0.0,
            "max_score": None, "tests": [], "seconds": 0.0}


def _worker_init(run_id: str) -> None:
    import ctypes

    os.environ["AUTOGRADE_RUN_ID"] = run_id  # names this batch's scratch folders and cgroups
    try:
        ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: a killed batch takes its workers along
    except Exception:  # noqa: BLE001
        pass


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
        w.writerow(["student", "assignment", "score", "max_score", *test_ids, "seed", "device", "sandbox", "graded_at", "error"])
        for r in sorted(rows, key=lambda r: (r["student"], str(r.get("assignment")))):
            per = {t["grade_id"]: t["score"] for t in r.get("tests", [])}
            w.writerow([r["student"], r.get("assignment"), r.get("score"), r.get("max_score"),
                        *[per.get(t, "") for t in test_ids], r.get("seed", ""), r.get("device", ""),
                        (r.get("protections") or {}).get("sandbox", ""), r.get("graded_at", ""), r.get("error", "")])
    return len(rows)


@dataclass
class Summary:
    graded: int = 0
    skipped: int = 0
    errors: int = 0
    results: list = field(default_factory=list)
    protections: set = field(default_factory=set)

    def table(self) -> str:
        rs = [r for r in self.results if not r.get("error")]
        lines = [f"graded {self.graded}, unchanged and skipped {self.skipped}, errors {self.errors}"]
        for p in sorted(self.protections):
            lines.append(p)
        if rs:
            fractions = [r["score"] / r["max_score"] for r in rs if r.get("max_score")]
            if fractions:
                lines.append(f"mean score {100 * statistics.mean(fractions):.1f}% of the maximum over {len(fractions)} graded now")
            slow = sorted(rs, key=lambda r: -r.get("seconds", 0))[:5]
            lines.append("slowest: " + ", ".join(f"{r['student']} {r['seconds']:.1f}s" for r in slow))
        for r in self.results:
            if r.get("error"):
                lines.append(f"error {r['student']}: {r['error']}")
        return "\n".join(lines)


def _cleanup(run_id: str) -> None:
    """Remove what a worker that died left behind: this batch's scratch folders and cgroups."""
    import tempfile

    from .kernel import remove_tree
    from .sandbox import Cgroup

    Cgroup.remove_leftovers(run_id)
    for d in Path(tempfile.gettempdir()).glob(f"autograde-{run_id}-*"):
        remove_tree(d)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (``taskset``, a cpuset) and its cgroup's CPU quota
    (``docker --cpus``, a Kubernetes limit), not the machine's count, which a container on a large host
    overstates. joblib's ``cpu_count`` (loky) reads both, cgroup v1 and v2; ``LOKY_MAX_CPU_COUNT`` caps it."""
    from joblib import cpu_count

    return max(1, cpu_count())


def workers(jobs: int | None, cores: int) -> tuple[int, int, bool]:
    """``(jobs, threads per kernel, prestart)`` for ``--jobs`` (None: one worker per usable core).

    Threads: the cores shared among the workers, so that kernels do not oversubscribe them. Prestart: a
    worker starts its next kernel ahead of time only where a core would otherwise idle; with a worker per
    core the cores are busy anyway and a spare kernel per worker would only hold memory
    (benchmarks/grading.py, 40 submissions of 02 on 2 cores: --jobs 1 223 s without, 161 s with;
    --jobs 2 133 s without, 139 s with)."""
    if jobs is not None and jobs < 0:
        raise GradingError(f"--jobs {jobs}: the number of workers must be at least 1 (or left out for one per core).")
    jobs = jobs or cores
    return jobs, max(1, cores // jobs), jobs < cores


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
    from pebble import ProcessExpired, ProcessPool
    from tqdm import tqdm

    from . import checks, sandbox
    from .feedback import write_feedback
    from .gradebook import Gradebook

    subs, course = discover(path, assignment)
    device = checks.resolve_device(device)
    jobs, threads, prestart = workers(jobs, usable_cores())
    limits = limits or Limits()
    if limits.sandbox:
        try:
            sandbox.require()  # once, before any worker exists: they inherit the answer
        except sandbox.SandboxUnavailable as exc:
            raise GradingError(str(exc)) from None
    if not limits.threads:
        limits.threads = threads
    results = Path(results or course / "autograded")
    book = Gradebook(db_url) if db_url else None
    if book:  # prepare the gradebook before grading anything: a wrong --db fails now, not mid-batch
        try:
            for aid in {s.assignment for s in subs if s.assignment in assignments()} or set(assignments()):
                book.ensure_assignment(aid)
        except Exception as exc:
            raise GradingError(f"Cannot use the gradebook {db_url}: {type(exc).__name__}: {exc}. Check the --db URL (e.g. sqlite:///gradebook.db).") from None

    summary = Summary()

    def finish(sub: Submission, key: str | None, report: dict) -> None:
        report.update(student=sub.student, key=key, graded_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        report["assignment"] = report.get("assignment") or sub.assignment
        if report.get("error"):
            summary.errors += 1
        else:
            summary.graded += 1
            if book:
                book.record(report)
            write_feedback(report, course / "feedback" / sub.student / report["assignment"] / f"{Path(report['notebook']).stem}.html")
            summary.protections.add(_protection_line(report))
        safe_io.write_atomic(result_path(results, sub), json.dumps(report, indent=1))  # last: the commit marker
        summary.results.append(report)

    todo = []
    for sub in subs:
        if sub.refused:
            finish(sub, None, _error(sub, f"{sub.path} {sub.refused}; it was not graded. Ask the student to submit the notebook file itself."))
            continue
        try:
            key = content_key(sub, device)
        except (OSError, safe_io.UnsafeFile) as exc:
            finish(sub, None, _error(sub, f"{sub.path} cannot be read safely ({exc}); it was not graded."))
            continue
        rp = result_path(results, sub)
        if not force and rp.exists():
            try:
                stored = json.loads(rp.read_text(encoding="utf-8"))
                if stored.get("key") == key and not stored.get("error"):
                    summary.skipped += 1
                    continue
            except ValueError:
                pass
        todo.append((sub, key))

    run_id = uuid.uuid4().hex[:8]
    deadline = limits.total_timeout + DEADLINE_MARGIN
    try:
        with ProcessPool(max_workers=jobs, initializer=_worker_init, initargs=(run_id,)) as pool:
            futures = {pool.schedule(_grade_one, args=(sub, device, seed, limits, prestart), timeout=deadline): (sub, key)
                       for sub, key in todo}
            bar = tqdm(as_completed(futures), total=len(futures), unit="notebook", disable=not progress, desc="grading")
            for fut in bar:
                sub, key = futures[fut]
                try:
                    report = fut.result()
                except FutureTimeout:
                    report = _error(sub, f"grading took longer than {deadline} s and its worker was stopped; the "
                                         "submission was not graded (it is graded again on the next run)")
                except ProcessExpired as exc:
                    report = _error(sub, f"the worker grading this submission died ({exc}); it was not graded "
                                         "(it is graded again on the next run); the other submissions were not affected")
                except Exception as exc:  # noqa: BLE001
                    report = _error(sub, f"internal grader error: {type(exc).__name__}: {exc}")
                finish(sub, key, report)
                bar.set_postfix_str(sub.label)
    finally:
        _cleanup(run_id)
    return summary


def _protection_line(report: dict) -> str:
    from .sandbox import Protections

    p = report.get("protections") or {}
    try:
        return Protections(**p).summary()
    except TypeError:
        return "sandbox: unknown"
