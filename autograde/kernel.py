"""Running one assembled notebook in a fresh, sandboxed kernel, and measuring from outside it.

- ``Scratch``: a private folder per grading. Only its ``box/`` is bound into the sandbox (writable);
  the kernel log and the connection files live beside it, where the kernel cannot reach them.
- ``execute``: nbclient drives the kernel cell by cell with a per-cell timeout; a watchdog (a thread
  of the grader) kills the whole sandbox when the process tree's memory, the total time or the box's
  disk use exceed their limits; a cell that kills the kernel is skipped on a rerun from the top; after
  the last attempt the kernel is shut down and every process of its sandbox killed.
- Every message the kernel sends (outputs, errors, widget comms, display updates) counts against one
  output budget, and the sockets refuse oversized messages, so a submission cannot make the grader hold
  gigabytes.
- Timing cells (``autograde.timed`` in a cell's metadata) are measured by the grader's own clock, from
  sending the request to receiving the reply, alternating with a reference operation the grader runs
  itself: the student's process never reports its own speed.
- Every kernel imports torch as it starts (``PRELOAD``; no name is left in the student's namespace), and a
  batch worker starts the next submission's kernel, in its own scratch folder, cgroup and sandbox, while it
  grades the current one (``prestart`` / ``take_spare``): one fresh kernel per submission as before, with
  its start-up and imports done beside the previous grading instead of on the class's clock.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from . import sandbox

DEFAULT_CELL_TIMEOUT = 120
MAX_MESSAGE_BYTES = 32 << 20  # one ZeroMQ message from the kernel; larger ones are refused by the socket


@dataclass
class Limits:
    """What one submission may use. Defaults suit a 2-core, 8 GB machine grading two at a time."""

    cell_timeout: int = DEFAULT_CELL_TIMEOUT  # seconds per cell
    total_timeout: int = 900  # seconds for the whole notebook, every attempt included
    memory_mb: int = 4096  # memory of the kernel's whole process tree
    output_kb: int = 512  # output kept per submission (every message kind); the rest is dropped
    disk_mb: int = 1024  # what the kernel may write into its box
    processes: int = 256  # processes and threads in the sandbox
    sandbox: bool = True  # bubblewrap; False only with --no-sandbox
    threads: int = 0  # torch/BLAS threads in the kernel; 0: all cores
    restarts: int = 5  # times a dead kernel is restarted (the notebook rerun without the cell that killed it)


class Scratch:
    """``root/`` (0700, the grader's alone) holding ``box/`` (the kernel's only writable folder),
    ``conn/`` (connection files, bound read-only into the sandbox) and ``kernel.log``."""

    def __init__(self):
        run = os.environ.get("AUTOGRADE_RUN_ID")  # a batch's id: it removes what a dead worker leaves
        self.root = Path(tempfile.mkdtemp(prefix=f"autograde-{run}-" if run else "autograde-"))
        self.box = self.root / "box"
        self.conn = self.root / "conn"
        for d in (self.box, self.conn, self.box / "work", self.box / "home", self.box / "probes"):
            d.mkdir()
        self.log = os.fdopen(os.open(self.root / "kernel.log", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                     | os.O_CLOEXEC, 0o600), "ab")

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *exc) -> None:
        self.log.close()
        remove_tree(self.root)


def remove_tree(path: Path) -> None:
    """``rm -rf``, also through folders the kernel made unwritable (chmod 000) to leave its files behind.
    A path that is already gone is left alone (the retry below must never touch the folder above it)."""
    if not os.path.lexists(path):
        return

    def retry(func, p, _exc):
        if os.path.abspath(p) == os.path.abspath(path):  # the tree's own root: its parent is not ours to change
            return
        try:
            os.chmod(os.path.dirname(p), 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)


@dataclass
class Run:
    """What executing the notebook produced besides the records in the box."""

    notes: list[str] = field(default_factory=list)
    timing: dict[str, dict] = field(default_factory=dict)  # timed key -> {"student": [...], "reference": [...]}
    protections: sandbox.Protections | None = None
    # Where the time went (every attempt), for benchmarks/grading.py's breakdown: "sandbox and kernel start",
    # "student cells", "probe cells", "timing cells".
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, what: str, seconds: float) -> None:
        self.seconds[what] = self.seconds.get(what, 0.0) + seconds


# What every kernel runs as it starts, before any cell: the imports every assignment's first cell and the
# grader's probe cells make, so that a kernel started ahead of time (``prestart``) has done them too. The
# names are deleted again: a submission that forgets ``import torch`` still fails as it would elsewhere.
PRELOAD = "import numpy as _autograde_preload, torch as _autograde_preload; del _autograde_preload"

# One event loop per process for every kernel it drives: a kernel started ahead of time belongs to the
# loop that started it, and grading it later must happen in the same loop.
_loop: asyncio.AbstractEventLoop | None = None


def _run(coro):
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coro)


@dataclass
class Spare:
    """A kernel started ahead of time for the next submission: its own scratch folder, cgroup and sandbox."""

    scratch: Scratch
    cgroup: object
    km: object
    spec: object
    fits: tuple  # (limits, device) it was started for


_spare: Spare | None = None


def _fits(limits: Limits, device: str) -> tuple:
    import dataclasses

    return (*dataclasses.astuple(limits), device)


def _cgroup(limits: Limits, device: str):
    """The cgroup one grading's kernels run in; on CUDA without a memory limit (the watchdog still watches)."""
    return sandbox.Cgroup.create(limits.memory_mb if not device.startswith("cuda") else None, limits.processes)


def prestart(limits: Limits, device: str) -> None:
    """Start a kernel now for the next ``execute`` with the same limits and device (``autograde batch``'s
    workers call this while they grade). It boots and imports beside the current grading; nothing of any
    submission is in it until ``take_spare`` hands it to one."""
    global _spare
    discard_spare()
    scratch = Scratch()
    cgroup = None
    try:
        if limits.sandbox:
            cgroup = _cgroup(limits, device)
        km, spec = _kernel_manager(scratch, limits, device, 0, cgroup)
        _run(km.start_kernel(env=sandbox.environment(spec), cwd=str(scratch.box / "work"),
                             stdout=scratch.log, stderr=scratch.log))
    except Exception:  # noqa: BLE001 - no spare then; the next grading starts its own kernel as usual
        if cgroup:
            cgroup.remove()
        scratch.__exit__()
        return
    _spare = Spare(scratch, cgroup, km, spec, _fits(limits, device))


def take_spare(limits: Limits, device: str) -> Spare | None:
    """The kernel ``prestart`` started, if it was started for these limits and device and is still alive."""
    global _spare
    spare, _spare = _spare, None
    if spare is None:
        return None
    proc = getattr(getattr(spare.km, "provisioner", None), "process", None)
    if spare.fits != _fits(limits, device) or proc is None or proc.poll() is not None:
        drop(spare)
        return None
    return spare


def discard_spare() -> None:
    global _spare
    spare, _spare = _spare, None
    if spare is not None:
        drop(spare)


def drop(spare: Spare) -> None:
    """Shut a spare kernel down and remove its cgroup and scratch folder."""
    _run(_shutdown(spare.km))
    if spare.cgroup:
        spare.cgroup.kill_all()
        spare.cgroup.remove()
    spare.scratch.__exit__()


def _box_bytes(box: Path, cap_entries: int = 20_000) -> int:
    """Bytes the kernel has written into its box (st_blocks, so sparse files count as what they use)."""
    total, seen, stack = 0, 0, [str(box)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    seen += 1
                    if seen > cap_entries:
                        return 1 << 62  # a million little files is an attack on the disk too
                    st = e.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
        except OSError:
            continue
    return total


class _Watchdog:
    """Kills the sandbox when it exceeds its memory, total time or disk; says why."""

    def __init__(self, km, limits: Limits, start: float, box: Path, cgroup):
        self.km, self.limits, self.start, self.box, self.cgroup = km, limits, start, box, cgroup
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _kill(self, root) -> None:
        import psutil

        if self.cgroup:
            self.cgroup.kill_all()
        for p in [*root.children(recursive=True), root]:
            try:
                p.kill()
            except psutil.Error:
                pass

    def _run(self):
        import psutil

        tick = 0
        while not self._stop.wait(0.1):
            tick += 1
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
            elif time.monotonic() - self.start > self.limits.total_timeout:
                self.reason = f"the notebook ran longer than {self.limits.total_timeout} s in all and was stopped"
            elif tick % 10 == 0 and _box_bytes(self.box) > self.limits.disk_mb << 20:
                self.reason = f"the notebook wrote more than {self.limits.disk_mb} MB of files and was stopped"
            if self.reason:
                self._kill(root)
                return


def _client_class():
    from jupyter_client.asynchronous import AsyncKernelClient

    class CappedKernelClient(AsyncKernelClient):
        """Sockets that refuse any single message over MAX_MESSAGE_BYTES and queue few messages."""

        def _create_connected_socket(self, channel, identity=None):
            import zmq

            sock = super()._create_connected_socket(channel, identity)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
            sock.setsockopt(zmq.RCVHWM, 64)
            return sock

    return CappedKernelClient


def _kernel_manager(scratch: Scratch, limits: Limits, device: str, attempt: int, cgroup):
    from jupyter_client.manager import AsyncKernelManager

    spec = sandbox.Spec(box=scratch.box, readonly=(scratch.conn,), memory_mb=None if device.startswith("cuda") or cgroup else limits.memory_mb + 2048,
                        nproc=limits.processes, threads=limits.threads, device=device)

    class SandboxedKernelManager(AsyncKernelManager):  # nbclient drives an async manager; a blocking one stalls its loop
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = [*super().format_kernel_cmd(extra_arguments), f"--IPKernelApp.exec_lines={PRELOAD}"]
            return sandbox.command(cmd, spec, cgroup) if limits.sandbox else cmd

    km = SandboxedKernelManager(kernel_name="python3")
    km.client_factory = _client_class()
    # Interrupts (a cell over its time limit) travel as a message the kernel acts on itself: a signal to the
    # process jupyter_client started would stop at bubblewrap, outside the sandbox's session.
    km.kernel_spec.interrupt_mode = "message"
    # Unix sockets in a folder named afresh for every attempt (a kernel cannot plant links where the next
    # attempt's sockets will be); no TCP is needed, so the kernel lives without a network.
    ipc = scratch.box / f"ipc-{uuid.uuid4().hex[:10]}"
    ipc.mkdir()
    km.transport = "ipc"
    km.ip = str(ipc / "k")
    # The connection file (with the message-signing key) sits in conn/, read-only inside the sandbox.
    km.connection_file = str(scratch.conn / f"kernel{attempt}.json")
    return km, spec


def execute(nb, scratch: Scratch, limits: Limits, device: str = "cpu",
            before_cell: Callable[[dict], Awaitable[None]] | None = None,
            references: Callable[[str], Callable[[], object] | None] | None = None,
            spare: Spare | None = None) -> Run:
    """Run ``nb`` in a fresh sandboxed kernel in ``scratch.box/work``; never raises for a student's fault.

    ``before_cell(metadata)`` is awaited before each cell that carries ``autograde`` metadata (the grader
    uses it to make sure a probe's plans are written); ``references(key)`` gives the reference operation
    to time before each timing cell of ``key``. ``spare``: a kernel ``prestart`` started in ``scratch``
    (``take_spare``), used for the first attempt; a restart after a crash always starts a new kernel.
    """
    return _run(_execute(nb, scratch, limits, device, before_cell, references, spare))


async def _execute(nb, scratch, limits, device, before_cell, references, spare=None) -> Run:
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    run = Run()
    if spare is not None:
        cgroup = spare.cgroup
    elif limits.sandbox:
        cgroup = _cgroup(limits, device)
    else:
        cgroup = None
    budget: dict[str, int] = {}  # output bytes left and dropped, reset for every attempt below

    class CappedClient(NotebookClient):
        running: int | None = None  # index of the cell being executed (to know which one killed the kernel)

        async def async_start_new_kernel(self, **kwargs):
            t0 = time.perf_counter()
            try:
                return await super().async_start_new_kernel(**kwargs)
            finally:
                run.add("sandbox and kernel start", time.perf_counter() - t0)

        async def async_start_new_kernel_client(self):
            t0 = time.perf_counter()  # includes waiting for the kernel to answer: its imports
            try:
                return await super().async_start_new_kernel_client()
            finally:
                run.add("sandbox and kernel start", time.perf_counter() - t0)

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            self.running = cell_index
            meta = cell.get("metadata", {}).get("autograde", {})
            if meta and before_cell is not None:
                await before_cell(meta)
            key = meta.get("timed")
            ref = references(key) if key and references else None
            ref_seconds = None
            if ref is not None:  # the reference, timed here, right before the student's call
                t0 = time.perf_counter()
                ref()
                _synchronize(device)
                ref_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            seconds = time.perf_counter() - t0
            run.add("timing cells" if key else "probe cells" if meta.get("probe") else "student cells", seconds)
            if key and not meta.get("warmup"):
                slot = run.timing.setdefault(key, {"student": [], "reference": []})
                if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    slot["error"] = "the timed call raised an exception"
                else:
                    slot["student"].append(seconds)
                    if ref_seconds is not None:
                        slot["reference"].append(ref_seconds)
            return out

        def process_message(self, msg, cell, cell_index):
            if msg["msg_type"] != "status":  # status messages end a cell: never dropped
                size = len(json.dumps(msg.get("content", {}), default=str)) + sum(len(b) for b in msg.get("buffers") or [])
                if size > budget["left"]:
                    budget["dropped"] += size
                    return None
                budget["left"] -= size
            return super().process_message(msg, cell, cell_index)

    original_cells = copy.deepcopy(nb.cells)
    skipped: list[int] = []
    start = time.monotonic()
    try:
        # A cell that kills the kernel (os._exit, a crash, the memory watchdog) would cost every test after it.
        # So the kernel is restarted and the notebook rerun from the top without that cell, up to
        # limits.restarts times: the tests that depend on the cell fail, the others are still graded.
        for attempt in range(limits.restarts + 1):
            budget.update(left=limits.output_kb << 10, dropped=0)  # a rerun's output replaces the last one's
            run.timing.clear()
            if attempt:
                nb.cells = copy.deepcopy(original_cells)
                for i in skipped:
                    nb.cells[i].source = "# skipped by the grader: this cell stopped the kernel"
            if attempt == 0 and spare is not None:
                km, spec = spare.km, spare.spec
            else:
                km, spec = _kernel_manager(scratch, limits, device, attempt, cgroup)
            if run.protections is None:
                run.protections = sandbox.protections(spec, cgroup, limits.memory_mb) if limits.sandbox else sandbox.unsandboxed()
            client = CappedClient(
                nb, km=km, timeout=limits.cell_timeout, allow_errors=True, interrupt_on_timeout=True,
                record_timing=False, store_widget_state=False, resources={"metadata": {"path": str(scratch.box / "work")}},
            )
            died = stopped_early = False
            notes_before = len(run.notes)
            with _Watchdog(km, limits, start, scratch.box, cgroup) as dog:
                try:
                    # The kernel's own stderr (ipykernel's start-up chatter, crash messages) goes to a log the
                    # grader opened once, outside the sandbox; what student code prints is in the cell outputs.
                    await client.async_execute(env=sandbox.environment(spec), cwd=str(scratch.box / "work"),
                                               stdout=scratch.log, stderr=scratch.log)
                except DeadKernelError:
                    died = True
                except Exception as exc:  # a timeout the kernel did not answer, a broken kernel start, ...
                    stopped_early = True
                    run.notes.append(f"the notebook stopped early: {type(exc).__name__}: {str(exc)[:300]}")
                finally:
                    import atexit

                    atexit.unregister(client._cleanup_kernel)  # nbclient leaves it registered when the start fails
                    await _shutdown(km)
                    if cgroup:
                        cgroup.kill_all()
            if dog.reason:
                run.notes.append(dog.reason)
            elif cgroup and cgroup.oom_kills():
                run.notes.append(f"the kernel ran out of memory (the limit is {limits.memory_mb} MB) and was stopped")
            if attempt == 0 and spare is not None and client.running is None and (died or stopped_early) and not dog.reason:
                # The kernel started ahead of time failed before this notebook's first cell (it died while idle,
                # or never answered): not the student's doing, so the notebook starts again in a new kernel.
                del run.notes[notes_before:]
                spare = None
                continue
            if not died:
                break
            cell = client.running
            where = f"cell {cell + 1}" if cell is not None else "a cell"
            out_of_time = dog.reason is not None and "longer than" in dog.reason
            if cell is None or cell in skipped or out_of_time or attempt == limits.restarts:
                run.notes.append(f"the kernel died while running {where} (the process exited or was killed); "
                                 "the cells after it did not run")
                break
            skipped.append(cell)
            run.notes.append(f"the kernel died while running {where} (the process exited or was killed); it was "
                             "restarted and the notebook run again without that cell")
    finally:
        if cgroup:
            cgroup.remove()
    if budget["dropped"]:
        run.notes.append(f"output beyond {limits.output_kb} KB was dropped ({budget['dropped'] >> 10} KB); it does not affect the grade")
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("autograde"):
            continue  # the grader's own probe and timing cells: their failures show in the checks' feedback
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                run.notes.append(f"cell {i + 1} raised {str(o.get('ename'))[:100]}: {str(o.get('evalue'))[:200]}")
    return run


async def _shutdown(km) -> None:
    """Shut the kernel down now and make sure its sandbox is gone (nbclient leaves a kernel it did not start)."""
    try:
        if await km.is_alive():
            await km.shutdown_kernel(now=True)
    except Exception:  # noqa: BLE001 - already dead, or never started
        pass


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()

