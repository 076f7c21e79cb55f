"""Grading one submitted notebook: assemble, execute the student's code with probes, judge.

Steps, each a small function:
1. ``find_assignment``: which source notebook in ``solutions/`` this submission answers.
2. ``write_plans``: for every check of every test cell, build the plan (inputs drawn from a seed of
   this grading run) and save it to a scratch folder.
3. ``execute``: run the assembled notebook in a fresh kernel (a child process) with a per-cell time
   limit; the probe cells write raw records next to the plans.
4. ``judge_tests``: read the records back as plain data and compute each test's verdict here.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import checks, notebook
from .probe import Raw
from .verdict import CheckResult

COURSE_ROOT = Path(os.environ.get("AUTOGRADE_COURSE_ROOT", Path(__file__).resolve().parents[1]))
DEFAULT_CELL_TIMEOUT = 120


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
    overlap = {a: len(ids & {notebook.grade_id(c) for c in notebook.read(s.source).cells}) for a, s in known.items()}
    best = max(overlap, key=overlap.get, default=None)
    if best and overlap[best] > 0:
        return known[best]
    raise GradingError(
        f"Cannot tell which assignment {path} answers: its name matches none of "
        f"{', '.join(known) or 'no assignments'} and it has none of their graded cells. "
        "Pass the assignment with --assignment ID."
    )


def write_plans(specs, scratch: Path, device: str, run_seed: int) -> dict:
    plans = {}
    for spec in specs:
        for name in spec.checks:
            c = checks.get(name)
            plan = checks.make_plan(c, device, checks.derive_seed(run_seed, f"{spec.grade_id}/{name}"))
            plan.save(scratch / spec.grade_id / name)
            plans[(spec.grade_id, name)] = (c, plan)
    return plans


@dataclass
class Limits:
    """What one submission may use. Defaults suit a 2-core, 8 GB machine grading two at a time."""

    cell_timeout: int = DEFAULT_CELL_TIMEOUT  # seconds per cell
    total_timeout: int = 900  # seconds for the whole notebook
    memory_mb: int = 4096  # resident memory of the kernel (and an address-space cap on CPU)
    output_kb: int = 512  # printed output kept per submission; the rest is dropped
    sandbox: bool = True  # Landlock file-system rules and a private network namespace, where available
    threads: int = 0  # torch/BLAS threads in the kernel; 0: all cores
    restarts: int = 5  # times a dead kernel is restarted (the notebook rerun without the cell that killed it)


def _kernel_manager(scratch: Path, limits: Limits, device: str, attempt: int = 0):
    from jupyter_client.manager import AsyncKernelManager

    from . import sandbox

    class SandboxedKernelManager(AsyncKernelManager):  # nbclient drives an async manager; a blocking one stalls its loop
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if not limits.sandbox:
                return cmd
            wrapper = [sys.executable, "-m", "autograde.sandbox", "--write", str(scratch), "--write", "/dev/null"]
            if not device.startswith("cuda"):  # CUDA reserves vast virtual ranges; the watchdog covers it
                wrapper += ["--memory-mb", str(limits.memory_mb + 2048)]  # + room for torch's own mappings
            return sandbox.network_prefix() + wrapper + ["--", *cmd]

    km = SandboxedKernelManager(kernel_name="python3")
    if limits.sandbox:
        # Unix sockets in the scratch folder: no TCP is needed, so the kernel can live without a network.
        km.transport = "ipc"
        km.ip = str(scratch / f"ipc{attempt}" / "kernel")
        (scratch / f"ipc{attempt}").mkdir()
    km.connection_file = str(scratch / f"kernel{attempt}.json")
    return km


class _Watchdog:
    """Kills the kernel when it exceeds its memory or total time; says why."""

    def __init__(self, km, limits: Limits, start: float):
        import threading

        self.km, self.limits, self.reason, self.start = km, limits, None, start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        import psutil

        start = self.start  # the total time counts every attempt of this notebook
        while not self._stop.wait(0.1):
            proc = getattr(getattr(self.km, "provisioner", None), "process", None)
            if proc is None:
                continue
            try:
                root = psutil.Process(proc.pid)
                rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            if rss > self.limits.memory_mb << 20:
                self.reason = f"the kernel used more than {self.limits.memory_mb} MB of memory and was stopped"
            elif time.monotonic() - start > self.limits.total_timeout:
                self.reason = f"the notebook ran longer than {self.limits.total_timeout} s in all and was stopped"
            if self.reason:
                for p in [*root.children(recursive=True), root]:
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
                return


def execute(nb, scratch: Path, limits: Limits, device: str = "cpu") -> list[str]:
    """Run ``nb`` in a fresh sandboxed kernel in ``scratch/work``; return notes, never raise for student faults."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    workdir = scratch / "work"
    home = scratch / "home"
    for d in (workdir, home, home / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        HOME=str(home), TMPDIR=str(home / "tmp"), IPYTHONDIR=str(home / ".ipython"),
        MPLCONFIGDIR=str(home / ".matplotlib"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        MPLBACKEND="agg", PYTHONDONTWRITEBYTECODE="1",
    )
    if limits.threads:
        env.update(OMP_NUM_THREADS=str(limits.threads), MKL_NUM_THREADS=str(limits.threads))
    budget: dict[str, int] = {}  # output bytes left and dropped, reset for every attempt below

    class CappedClient(NotebookClient):
        running: int | None = None  # index of the cell being executed (to know which one killed the kernel)

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            self.running = cell_index
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

        def output(self, outs, msg, display_id, cell_index):
            size = len(json.dumps(msg.get("content", {}), default=str))
            if size > budget["left"]:
                budget["dropped"] += size
                return None
            budget["left"] -= size
            return super().output(outs, msg, display_id, cell_index)

    original_cells = copy.deepcopy(nb.cells)
    notes: list[str] = []
    skipped: list[int] = []
    start = time.monotonic()
    # A cell that kills the kernel (os._exit, a crash, the memory watchdog) would cost every test after it.
    # So the kernel is restarted and the notebook rerun from the top without that cell, up to
    # limits.restarts times: the tests that depend on the cell fail, the others are still graded.
    for attempt in range(limits.restarts + 1):
        budget.update(left=limits.output_kb << 10, dropped=0)  # a rerun's output replaces the last one's
        if attempt:
            nb.cells = copy.deepcopy(original_cells)
            for i in skipped:
                nb.cells[i].source = "# skipped by the grader: this cell stopped the kernel"
        km = _kernel_manager(scratch, limits, device, attempt)
        client = CappedClient(
            nb, km=km, timeout=limits.cell_timeout, allow_errors=True, interrupt_on_timeout=True,
            record_timing=False, resources={"metadata": {"path": str(workdir)}},
        )
        died = False
        with _Watchdog(km, limits, start) as dog:
            try:
                # The kernel's own stderr (ipykernel's start-up chatter, crash messages) goes to a log file,
                # not to the grader's terminal; what student code prints is captured in the cell outputs.
                with open(scratch / "kernel.log", "ab") as log:
                    client.execute(env=env, cwd=str(workdir), stdout=log, stderr=log)
            except DeadKernelError:
                died = True
            except Exception as exc:  # a timeout the kernel did not answer, a broken kernel start, ...
                notes.append(f"the notebook stopped early: {type(exc).__name__}: {str(exc)[:300]}")
        if dog.reason:
            notes.append(dog.reason)
        if not died:
            break
        cell = client.running
        where = f"cell {cell + 1}" if cell is not None else "a cell"
        out_of_time = dog.reason is not None and "longer than" in dog.reason
        if cell is None or cell in skipped or out_of_time or attempt == limits.restarts:
            notes.append(f"the kernel died while running {where} (the process exited or was killed); "
                         "the cells after it did not run")
            break
        skipped.append(cell)
        notes.append(f"the kernel died while running {where} (the process exited or was killed); it was "
                     "restarted and the notebook run again without that cell")
    if budget["dropped"]:
        notes.append(f"output beyond {limits.output_kb} KB was dropped ({budget['dropped'] >> 10} KB); it does not affect the grade")
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                notes.append(f"cell {i + 1} raised {o.get('ename')}: {str(o.get('evalue'))[:200]}")
    return notes


def judge_tests(specs, plans, scratch: Path) -> list[dict]:
    tests = []
    for spec in specs:
        results: list[CheckResult] = []
        for name in spec.checks:
            c, plan = plans[(spec.grade_id, name)]
            folder = scratch / spec.grade_id / name
            try:
                raw = Raw.load(folder)
            except Exception:
                raw = Raw(calls={}, arrays={}, env={})  # no record: every property fails with the reason
            results.append(checks.judge(c, plan, raw))
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
    return tests


def grade_notebook(
    path: Path,
    assignment: str | None = None,
    device: str = "auto",
    seed: int | None = None,
    cell_timeout: int | None = None,
    root: Path = COURSE_ROOT,
    limits: Limits | None = None,
) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GradingError(f"{path} does not exist or is not a file. Check the path, or grade a folder with 'autograde batch'.")
    try:
        nb = notebook.read(path)
    except ValueError as exc:
        raise GradingError(
            f"Cannot grade {path}: {exc}. Ask the student to download the notebook again from JupyterLab "
            "(File > Download) and resubmit, or open it in a text editor to see what is wrong."
        ) from None
    a = find_assignment(path, nb, assignment, root)
    source = notebook.read(a.source)
    specs = notebook.test_specs(source)
    try:
        device = checks.resolve_device(device)
    except ValueError as exc:
        raise GradingError(f"{exc}. Use --device cpu, cuda or auto.") from None
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise GradingError("--device cuda was requested but this machine has no usable CUDA device. Use --device auto or cpu.")
    run_seed = secrets.randbits(32) if seed is None else int(seed)
    limits = limits or Limits()
    if cell_timeout:
        limits.cell_timeout = cell_timeout
    scratch = Path(tempfile.mkdtemp(prefix="autograde-"))
    try:
        probes = scratch / "probes"
        plans = write_plans(specs, probes, device, run_seed)
        run_nb = notebook.assemble(source, nb, lambda gid: probes / gid)
        notes = execute(run_nb, scratch, limits, device)
        tests = judge_tests(specs, plans, probes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "assignment": a.id,
        "notebook": str(path),
        "score": sum(t["score"] for t in tests),
        "max_score": sum(t["max_score"] for t in tests),
        "device": device,
        "seed": run_seed,
        "notes": notes,
        "tests": tests,
    }

