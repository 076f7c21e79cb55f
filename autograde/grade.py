"""Grading one submitted notebook: the pipeline, each step a small function called in order.

1. ``read_submission``: the file, read safely (a regular file, size-capped), parsed as a notebook.
2. ``find_assignment``: which source notebook in ``solutions/`` it answers.
3. ``build_plans``: for every check of every test cell, the plan (inputs drawn from a seed of this
   grading run; plain numpy/JSON data). Built in a thread while the kernel starts, and written into the
   kernel's box before the first probe cell runs.
4. ``kernel.execute``: the assembled notebook in a fresh sandboxed kernel (in a batch, one a worker started
   while it graded the previous submission); probe cells write raw records, timing cells are timed by the
   grader's clock against the reference it runs itself.
5. ``judge_tests``: records read back through ``autograde.records`` (validated against the plans) and
   judged here, outside the student's process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from . import checks, kernel, notebook, safe_io, sandbox
from .kernel import DEFAULT_CELL_TIMEOUT, Limits  # noqa: F401  (the CLI and batch import them from here)
from .verdict import CheckResult

COURSE_ROOT = Path(os.environ.get("AUTOGRADE_COURSE_ROOT", Path(__file__).resolve().parents[1]))
MAX_NOTEBOOK_BYTES = 64 << 20


class GradingError(Exception):
    """A submission or request that cannot be graded; the message is one paragraph for a person."""


@dataclass
class Assignment:
    id: str
    source: Path  # the instructor's nbgrader source notebook


def assignments(root: Path = COURSE_ROOT) -> dict[str, Assignment]:
    found = {}
    for folder in sorted((root / "solutions").glob("*")):
        nbs = sorted(folder.glob("*.ipynb"))
        if folder.is_dir() and nbs:
            found[folder.name] = Assignment(folder.name, nbs[0])
    return found


@functools.lru_cache(maxsize=32)
def _source(path: Path, mtime_ns: int):
    nb = notebook.read(path)
    return nb, notebook.test_specs(nb)


def source(a: Assignment):
    """The instructor's source notebook and its test specs, parsed once per process."""
    return _source(a.source, a.source.stat().st_mtime_ns)


def read_submission(path: Path):
    path = Path(path)
    try:
        data = safe_io.regular_file(path, MAX_NOTEBOOK_BYTES)
    except safe_io.MissingFile:
        raise GradingError(f"{path} does not exist. Check the path, or grade a folder with 'autograde batch'.") from None
    except safe_io.UnsafeFile as exc:
        raise GradingError(f"Cannot grade {path}: {exc}. Grade a regular .ipynb file (not a folder, link or pipe), "
                           f"at most {MAX_NOTEBOOK_BYTES >> 20} MB; grade a folder with 'autograde batch'.") from None
    except OSError as exc:
        raise GradingError(f"Cannot read {path} ({exc.strerror}). Check the path and its permissions.") from None
    try:
        return notebook.parse(data)
    except ValueError as exc:
        raise GradingError(
            f"Cannot grade {path}: {exc}. Ask the student to download the notebook again from JupyterLab "
            "(File > Download) and resubmit, or open it in a text editor to see what is wrong."
        ) from None


def find_assignment(path: Path, nb, requested: str | None, root: Path = COURSE_ROOT) -> Assignment:
    known = assignments(root)
    if requested:
        if requested not in known:
            raise GradingError(
                f"There is no assignment {requested!r} in {root / 'solutions'}; known assignments: "
                f"{', '.join(known) or 'none'}. Pass one of them with --assignment."
            )
        return known[requested]
    for guess in (path.stem, path.parent.name):
        if guess in known:
            return known[guess]
    ids = {notebook.grade_id(c) for c in nb.cells} - {None}
    overlap = {a: len(ids & {notebook.grade_id(c) for c in source(s)[0].cells}) for a, s in known.items()}
    best = max(overlap, key=overlap.get, default=None)
    if best and overlap[best] > 0:
        return known[best]
    raise GradingError(
        f"Cannot tell which assignment {path} answers: its name matches none of "
        f"{', '.join(known) or 'no assignments'} and it has none of their graded cells. "
        "Pass the assignment with --assignment ID."
    )


def build_plans(specs, device: str, run_seed: int, cuda: bool) -> dict:
    """(grade_id, check name) -> (check, plan), every input drawn from ``run_seed``."""
    plans = {}
    for spec in specs:
        for name in spec.checks:
            c = checks.get(name)
            plans[(spec.grade_id, name)] = (c, checks.make_plan(c, device, checks.derive_seed(run_seed, f"{spec.grade_id}/{name}"), cuda))
    return plans


def write_plans(plans: dict, box: Path) -> set:
    """Each plan into ``box/probes/<grade_id>/<check>/``, created exclusively: a folder or link the kernel
    planted there first makes the write fail, never redirects it. Returns the keys whose plan could not be
    written (their checks then fail, saying why)."""
    failed = set()
    for key, (_, plan) in plans.items():
        gid, name = key
        try:
            for fname, data in plan.files().items():
                safe_io.write_new(box, f"probes/{gid}/{name}/{fname}", data)
        except (OSError, safe_io.UnsafeFile):
            failed.add(key)
    return failed


def judge_tests(specs, plans, box: Path, timing: dict, unwritten: set = frozenset(), seconds: dict | None = None) -> list[dict]:
    """Every test's score and feedback. ``seconds`` (if given) collects the time spent reading records
    and judging them."""
    import time

    from . import records
    from .probe import Raw

    clock = {"reading records": 0.0, "verdicts": 0.0}
    tests = []
    for spec in specs:
        results: list[CheckResult] = []
        for name in spec.checks:
            c, plan = plans[(spec.grade_id, name)]
            if (spec.grade_id, name) in unwritten:
                why = "the notebook put a file or link where the grader writes this check's inputs, so it never ran"
                raw = Raw({c_["id"]: {"status": "invalid", "why": why} for c_ in plan.calls}, {}, {})
            else:
                t0 = time.perf_counter()
                raw = records.load(box, f"probes/{spec.grade_id}/{name}", plan)
                clock["reading records"] += time.perf_counter() - t0
            prefix = f"{spec.grade_id}/{name}/"
            raw.timing = {k[len(prefix):]: v for k, v in timing.items() if k.startswith(prefix)}
            t0 = time.perf_counter()
            results.append(checks.judge(c, plan, raw))
            clock["verdicts"] += time.perf_counter() - t0
        passed = bool(results) and all(r.passed for r in results)
        tests.append(
            {
                "grade_id": spec.grade_id,
                "score": spec.points if passed else 0.0,
                "max_score": spec.points,
                "feedback": "\n".join(r.feedback() for r in results) or "this test has no checks",
                "checks": [r.to_json() for r in results],
            }
        )
    if seconds is not None:
        seconds.update(clock)
    return tests


def _timed_layout(specs) -> dict[str, list[tuple[str, int]]]:
    """grade_id -> [(timed key, repeats)]: known before any plan is built (``Check.timed``)."""
    from .checks.properties import SPEED_REPEATS

    return {s.grade_id: [(f"{s.grade_id}/{n}/{cid}", SPEED_REPEATS) for n in s.checks for cid in checks.get(n).timed]
            for s in specs}


def grade_notebook(
    path: Path,
    assignment: str | None = None,
    device: str = "auto",
    seed: int | None = None,
    cell_timeout: int | None = None,
    root: Path = COURSE_ROOT,
    limits: Limits | None = None,
    prestart_next: bool = False,
) -> dict:
    """Grade one notebook (the steps in the module docstring). ``prestart_next``: also start a kernel for
    the next call in this process with the same limits and device (``autograde batch``'s workers)."""
    import time

    started = time.perf_counter()
    path = Path(path)
    nb = read_submission(path)
    a = find_assignment(path, nb, assignment, root)
    source_nb, specs = source(a)
    try:
        device = checks.resolve_device(device)
    except ValueError as exc:
        raise GradingError(f"{exc}. Use --device cpu, cuda or auto.") from None
    cuda = checks.cuda_available()
    if device.startswith("cuda") and not cuda:
        raise GradingError("--device cuda was requested but this machine has no usable CUDA device. Use --device auto or cpu.")
    limits = limits or Limits()
    if cell_timeout:
        limits.cell_timeout = cell_timeout
    if limits.sandbox:
        try:
            sandbox.require()
        except sandbox.SandboxUnavailable as exc:
            raise GradingError(str(exc)) from None
    run_seed = secrets.randbits(32) if seed is None else int(seed)
    layout = _timed_layout(specs)
    spare = kernel.take_spare(limits, device)  # started while this process graded the previous submission
    if prestart_next:
        kernel.prestart(limits, device)  # the next submission's kernel boots beside this grading
    with (spare.scratch if spare else kernel.Scratch()) as scratch, concurrent.futures.ThreadPoolExecutor(1) as pool:
        # Plans are built and written while the kernel starts; the first probe cell waits for them.
        planning = {}

        def prepare():
            t0 = time.perf_counter()
            plans = build_plans(specs, device, run_seed, cuda)
            unwritten = write_plans(plans, scratch.box)
            planning["plan building (beside the kernel start)"] = time.perf_counter() - t0
            return plans, unwritten

        def warm_up():
            # Imports the probe cells never wait for, done while the student's cells run: the references of
            # the timed checks need torch, the verdicts' intervals SciPy.
            t0 = time.perf_counter()
            if any(layout.values()):
                import torch  # noqa: F401
            import scipy.stats  # noqa: F401
            planning["imports for references and verdicts (beside the student's cells)"] = time.perf_counter() - t0

        ready = pool.submit(prepare)
        warmed = pool.submit(warm_up)  # the pool has one thread: this starts once the plans are written
        refs: dict[str, object] = {}

        async def before_cell(meta):
            if not ready.done():
                await asyncio.wrap_future(ready)

        def reference(key: str):
            warmed.result()
            if key not in refs:
                gid, name, _ = key.split("/", 2)
                c, plan = ready.result()[0][(gid, name)]
                refs[key] = c.reference(plan) if c.reference else None
            return refs[key]

        try:
            run_nb = notebook.assemble(source_nb, nb, lambda gid: scratch.box / "probes" / gid, lambda gid: layout.get(gid, ()))
        except BaseException:
            if spare:
                kernel.drop(spare)  # never handed to execute, which would have shut it down
            raise
        run = kernel.execute(run_nb, scratch, limits, device, before_cell, reference, spare)
        plans, unwritten = ready.result()
        warmed.result()
        judging: dict[str, float] = {}
        tests = judge_tests(specs, plans, scratch.box, run.timing, unwritten, judging)
    notes = run.notes
    crashed = [c["crashed"] for t in tests for c in t["checks"] if c.get("crashed")]
    if crashed:
        notes.append("grader: a verdict raised on this submission's records and failed only its check "
                     f"(report it if the code looks right): {'; '.join(crashed)[:500]}")
    protections = run.protections
    if not limits.sandbox:
        notes.append(protections.summary())
    timings = {**planning, **run.seconds, **judging, "grade_notebook in all": time.perf_counter() - started}
    return {
        "assignment": a.id,
        "notebook": str(path),
        "score": sum(t["score"] for t in tests),
        "max_score": sum(t["max_score"] for t in tests),
        "device": device,
        "seed": run_seed,
        "protections": protections.to_json(),
        "notes": notes,
        "tests": tests,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
