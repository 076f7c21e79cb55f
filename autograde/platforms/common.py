"""What Gradescope's and PrairieLearn's entrypoints share: one submission, graded as ``autograde grade`` grades it.

``run(folder, config)`` is the whole of it, in order:

1. ``find_notebook``: exactly one ``.ipynb`` in the submission folder (hidden folders such as
   ``.ipynb_checkpoints`` and ``__MACOSX`` are ignored), else one paragraph for the student.
2. ``check_submission``: readable, a notebook, and the right assignment's (it has at least one of the
   assignment's answer cells, found by their nbgrader ``grade_id``), else one paragraph for the student.
3. ``container_resources`` and ``limits_for``: the memory and CPUs the container really has (its cgroup),
   and the grader's limits derived from them and from the platform's time limit; a container too small to
   grade fairly is refused with a paragraph for course staff (never a kernel killed half-way).
4. ``grade_here``: ``autograde.grade.grade_notebook``, the pipeline ``autograde grade`` runs (the same
   checks, plans, seed handling and verdicts), inside bubblewrap when ``sandbox.require()`` succeeds and
   with ``Limits(sandbox=False)`` when the container forbids it (Docker usually refuses the user
   namespaces bubblewrap needs), which the result then says in words.
5. When the platform starts the entrypoint as root (both do), ``grade_as`` runs step 4 in a child process
   as the unprivileged user the export created (``autograde``): whatever the student's code does, it
   cannot rewrite the grader's files, its verdicts or ``results.json``, which only the root process
   writes; the child is not dumpable (so code running as the same user cannot read its memory or open
   its pipe through ``/proc``), and every process it leaves behind is killed when it ends (the root
   process is their subreaper).

``AUTOGRADE_PLATFORM_ROOT`` moves the platform's folder (``/autograder``, ``/grade``) elsewhere, which is
how the tests lay a submission out as the platform would without being on it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import __version__

ROOT_ENV = "AUTOGRADE_PLATFORM_ROOT"
CONFIG_NAME = "autograde_platform.json"
SOURCE = Path(__file__).resolve().parents[2]  # the folder holding autograde/ and solutions/ on the platform
MAX_RESULTS_BYTES = 1 << 20  # PrairieLearn rejects a results.json over 1 MB; Gradescope's cap is not documented
MAX_NOTEBOOK_BYTES = 64 << 20  # as autograde.grade.MAX_NOTEBOOK_BYTES

# Measured on the 2-core reference machine (README, "More than one machine"): the grader's own process
# with PyTorch imported for the speed references, and the largest kernel of any assignment's solution.
GRADER_MB = 600
KERNEL_MIN_MB = 800
# Seconds of the platform's time limit kept for what happens outside the notebook (Python and the grader's
# imports, judging, writing the results), per CPU: at half a CPU it takes twice as long.
OUTSIDE_NOTEBOOK_S = 45
VISIBILITIES = ("visible", "after_due_date", "after_published")


@dataclass
class Config:
    """What the export decided, stored beside the grader as ``autograde_platform.json``."""

    platform: str
    assignment: str
    timeout_s: int  # the platform's wall-clock limit for one submission
    memory_mb: int  # assumed when the container's cgroup does not say
    cpus: float  # assumed when the container's cgroup does not say
    seed: int | None = None  # None: a fresh seed for every submission (recorded in its results)
    device: str = "auto"
    hidden_visibility: str = "after_published"  # Gradescope: when students see the hidden tests
    grader_user: str = "autograde"
    grader_version: str = __version__
    # Every assignment's answer cells (grade_ids), so the platform, which holds only this assignment's source,
    # can still tell a notebook of another assignment from a broken one.
    answer_ids: dict[str, list[str]] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def load(cls, path: Path) -> "Config":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Ungradable(Exception):
    """The submission cannot be graded; the message is one paragraph for the student."""


class Unfit(Exception):
    """This container cannot grade fairly (too little memory or time); one paragraph for course staff."""


def platform_root(default: str) -> Path:
    return Path(os.environ.get(ROOT_ENV) or default)


# --- 1 and 2: the submission -----------------------------------------------------------------------
def find_notebook(folder: Path, assignment: str) -> Path:
    """The one notebook in ``folder`` (searched recursively; links are never followed)."""
    folder = Path(folder)
    notebooks, others = [], []
    if folder.is_dir():
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                rel = (Path(dirpath) / name).relative_to(folder)
                (notebooks if name.lower().endswith(".ipynb") else others).append(rel)
    if not notebooks:
        seen = f" (it holds {_names(others)})" if others else " (it is empty)"
        raise Ungradable(
            f"No Jupyter notebook (.ipynb file) was found in this submission{seen}. Submit the notebook "
            f"itself, {assignment}.ipynb: in JupyterLab, File > Download saves it to your computer.")
    if len(notebooks) > 1:
        raise Ungradable(
            f"This submission holds {len(notebooks)} notebooks ({_names(notebooks)}). Submit exactly one, "
            f"your {assignment}.ipynb, so that there is no doubt which one is graded.")
    return folder / notebooks[0]


def _names(paths, at_most: int = 8) -> str:
    shown = ", ".join(str(p) for p in paths[:at_most])
    return shown + (f" and {len(paths) - at_most} more" if len(paths) > at_most else "")


def check_submission(path: Path, assignment: str, answer_ids: dict[str, list[str]] | None = None):
    """The parsed notebook, or ``Ungradable`` saying what is wrong with the file and what to do.

    ``answer_ids`` (assignment -> its answer cells' grade_ids) defaults to this course's ``all_answer_ids()``."""
    from .. import notebook, safe_io

    name = Path(path).name
    try:
        data = safe_io.regular_file(Path(path), MAX_NOTEBOOK_BYTES)
    except safe_io.UnsafeFile as exc:
        raise Ungradable(f"{name} cannot be graded: {exc}. Submit the notebook file itself (at most "
                         f"{MAX_NOTEBOOK_BYTES >> 20} MB).") from None
    try:
        nb = notebook.parse(data)
    except ValueError as exc:
        raise Ungradable(
            f"{name} cannot be graded: {exc}. Download the notebook again from JupyterLab (File > Download) "
            "and submit that file; if it still fails, open it in a text editor to see what went wrong.") from None
    # Whose notebook it is: the assignment sharing the most answer cells with it (practice answers answer_qN
    # are in every assignment, the graded functions' cells are not).
    have = {notebook.grade_id(c) for c in nb.cells} - {None}
    known = answer_ids or all_answer_ids()
    overlap = {a: len(have & set(ids)) for a, ids in known.items()}
    overlap.setdefault(assignment, 0)
    best = max(overlap, key=overlap.get)
    if overlap[best] > overlap[assignment]:
        raise Ungradable(f"{name} is assignment {best}'s notebook, not {assignment}'s. Submit your {assignment}.ipynb.")
    if not overlap[assignment]:
        raise Ungradable(
            f"{name} has none of {assignment}'s answer cells. The grader finds your answers by the cells' "
            f"nbgrader metadata, which copying code into a new notebook loses: download {assignment}.ipynb "
            "again, paste your answers into its cells, and submit that notebook.")
    return nb


def all_answer_ids() -> dict[str, list[str]]:
    """assignment -> the grade_ids of its answer (solution) cells, from this course's source notebooks."""
    from .. import notebook
    from ..grade import assignments, source

    return {a: sorted({notebook.grade_id(c) for c in source(s)[0].cells if notebook.is_solution(c)} - {None})
            for a, s in assignments().items()}


# --- 3: the container and the limits ----------------------------------------------------------------
@dataclass
class Resources:
    memory_mb: int | None  # None: no limit found
    cpus: float | None
    how: str  # where the numbers came from, for the log


def container_resources() -> Resources:
    """Memory and CPUs this process may use: the tightest cgroup limit on its path (v2 or v1), else the machine."""
    import psutil

    mem, cpus, how = None, None, "the machine (no cgroup limit found)"
    base = Path("/sys/fs/cgroup")
    try:
        own = {}  # controller ("" for v2) -> this process's cgroup path
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path.lstrip("/")
        v2 = (base / "cgroup.controllers").is_file()
        mem_dir = base / own.get("", "") if v2 else base / "memory" / own.get("memory", "")
        cpu_dir = base / own.get("", "") if v2 else base / "cpu" / own.get("cpu", "")
        for d in _up_to(mem_dir, base):
            m = _read(d / "memory.max") if v2 else _read(d / "memory.limit_in_bytes")
            if m and m != "max" and int(m) < 1 << 50:
                mem = min(mem or 1 << 62, int(m) >> 20)
        for d in _up_to(cpu_dir, base):
            if v2:
                c = (_read(d / "cpu.max") or "max").split()
                quota, period = (None, None) if c[0] == "max" else (int(c[0]), int(c[1]))
            else:
                q, p = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
                quota, period = (int(q), int(p)) if q and p and int(q) > 0 else (None, None)
            if quota:
                cpus = min(cpus or 1e9, quota / period)
        if mem or cpus:
            how = "cgroup v2" if v2 else "cgroup v1"
    except (OSError, ValueError):
        pass
    total_mb = psutil.virtual_memory().total >> 20
    mem = min(mem, total_mb) if mem else total_mb
    cores = float(len(os.sched_getaffinity(0)))  # the cores this process may run on, not the host's count
    cpus = min(cpus, cores) if cpus else cores
    return Resources(mem, round(cpus, 2), how)


def _up_to(folder: Path, base: Path) -> list[Path]:
    """``folder`` and its parents down to ``base`` (a container sees its own cgroup as the root)."""
    out = [folder]
    while out[-1] != base and base in out[-1].parents:
        out.append(out[-1].parent)
    return out


def _read(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def limits_for(config: Config, res: Resources):
    """The grader's ``Limits`` in this container, or ``Unfit`` with what to raise and where."""
    from ..kernel import DEFAULT_CELL_TIMEOUT, Limits

    memory = res.memory_mb or config.memory_mb
    cpus = res.cpus or config.cpus
    kernel_mb = memory - GRADER_MB
    if kernel_mb < KERNEL_MIN_MB:
        raise Unfit(
            f"This autograder's container has {memory} MB of memory ({res.how}); grading a notebook needs "
            f"at least {GRADER_MB + KERNEL_MIN_MB} MB (the grader about {GRADER_MB} MB, the notebook's PyTorch "
            f"kernel up to {KERNEL_MIN_MB} MB). Course staff: raise the autograder's memory "
            f"({_where(config.platform)}) and regrade: this submission was not graded.")
    outside = math.ceil(OUTSIDE_NOTEBOOK_S / min(1.0, cpus))
    total = config.timeout_s - outside
    if total < 60:
        raise Unfit(
            f"The autograder's time limit ({config.timeout_s} s) leaves {max(total, 0)} s for the notebook after "
            f"the grader's own start and judging ({outside} s at {cpus:g} CPU). Course staff: raise the time limit "
            f"({_where(config.platform)}), export again with a matching --timeout, and regrade.")
    cell = max(30, min(total // 2, round(DEFAULT_CELL_TIMEOUT * max(1.0, 2.0 / cpus))))
    limits = Limits(cell_timeout=cell, total_timeout=total, memory_mb=kernel_mb, threads=max(1, int(cpus)))
    return limits, f"container: {memory} MB, {cpus:g} CPU ({res.how}); limits: {cell} s a cell, {total} s in all, " \
                   f"{kernel_mb} MB for the notebook's kernel, {limits.threads} thread(s)"


def _where(platform: str) -> str:
    return {"gradescope": "the assignment's Settings > Autograder settings on Gradescope",
            "prairielearn": "the grading image's host; PrairieLearn sets the container's size, not the question"}.get(platform, platform)


# --- 4 and 5: grading ---------------------------------------------------------------------------------
def grade_here(path: Path, config: Config, limits) -> dict:
    """``grade_notebook`` in this process, in bubblewrap where it can start; the report says which."""
    from .. import sandbox
    from ..grade import grade_notebook

    without = None
    if limits.sandbox:
        try:
            sandbox.require()
        except sandbox.SandboxUnavailable:
            without = sandbox.support()["error"] or "bubblewrap could not start"
            limits.sandbox = False
    report = grade_notebook(Path(path), config.assignment, config.device, seed=config.seed, limits=limits)
    report["platform"] = {"sandbox_unavailable": without}
    return report


WORKER = ("import sys; sys.path.insert(0, sys.argv[1]); "
          "from autograde.platforms.common import worker; worker(int(sys.argv[2]))")


def grade_as(user: str, path: Path, config: Config, limits, log=print) -> dict:
    """``grade_here`` in a child process running as ``user``, which only this process can read the result of.

    The child gets a copy of the notebook in a fresh folder it owns, the request on its stdin, and a pipe
    of its own for the report. When it ends, every process it left behind (reparented to this process,
    made their subreaper) is killed. Raises ``RuntimeError`` when the child produced no report.
    """
    import pwd
    import shutil
    import subprocess
    import tempfile
    import threading

    pw = pwd.getpwnam(user)
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of the child's tree become this process's children
    work = Path(tempfile.mkdtemp(prefix="autograde-submission-"))
    try:
        copy = work / Path(path).name
        shutil.copyfile(path, copy)
        for p in (work, copy):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        r, w = os.pipe()
        request = {"notebook": str(copy), "config": asdict(config), "limits": asdict(limits)}
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(work), "LANG": "C.UTF-8",
               "TMPDIR": tempfile.gettempdir()}
        # Root drops to the user and its groups; anyone else can only run the child as themselves.
        who = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[]) if os.geteuid() == 0 else {}
        proc = subprocess.Popen([sys.executable, "-I", "-c", WORKER, str(SOURCE), str(w)], stdin=subprocess.PIPE,
                                pass_fds=(w,), env=env, cwd=str(SOURCE), umask=0o077, **who)
        os.close(w)
        chunks: list[bytes] = []

        def read():
            with os.fdopen(r, "rb") as f:
                while len(b"".join(chunks)) <= 64 << 20 and (b := f.read(1 << 16)):
                    chunks.append(b)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
        try:
            proc.wait(timeout=limits.total_timeout + 180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            log("the grading child ran past its deadline and was killed")
        left = _kill_descendants()
        if left:
            log(f"killed {left} process(es) the notebook left running")
        reader.join(10)
        try:
            reply = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            reply = {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if "report" in reply:
        return reply["report"]
    if reply.get("kind") == "grading-error":
        from ..grade import GradingError

        raise GradingError(reply["error"])
    raise RuntimeError(f"the grading child (user {user}) ended with status {proc.returncode} and no report"
                       + (f": {reply['error']}" if reply.get("error") else ""))


def worker(fd: int) -> None:
    """The child's side of ``grade_as``: read the request, grade, write the reply to ``fd``."""
    from ..grade import GradingError
    from ..kernel import Limits

    _prctl(4, 0)  # PR_SET_DUMPABLE 0: the student's code, running as this user, cannot open /proc/<this>/...
    request = json.loads(sys.stdin.read())
    try:
        report = grade_here(Path(request["notebook"]), Config(**request["config"]), Limits(**request["limits"]))
        reply = {"report": report}
    except GradingError as exc:
        reply = {"kind": "grading-error", "error": str(exc)}
    except Exception:  # noqa: BLE001 - reported to the parent, which says so in the results
        reply = {"kind": "internal", "error": traceback.format_exc()[-4000:]}
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(reply))


def _prctl(option: int, value: int) -> None:
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _kill_descendants() -> int:
    import psutil

    killed = 0
    for _ in range(3):
        procs = psutil.Process().children(recursive=True)
        if not procs:
            break
        for p in procs:
            try:
                p.kill()
                killed += 1
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=5)
    return killed


@dataclass
class Outcome:
    """One submission's fate: a report, or a paragraph saying why there is none."""

    report: dict | None = None
    ungradable: str | None = None  # the submission's fault: for the student
    problem: str | None = None  # the platform's or the grader's: for course staff (and the student)
    log: list[str] = field(default_factory=list)  # for the platform's log, which only staff see
    seconds: float = 0.0


def run(folder: Path, config: Config) -> Outcome:
    """Steps 1 to 5 of the module docstring; never raises."""
    from ..grade import GradingError

    started = time.monotonic()
    out = Outcome()
    try:
        path = find_notebook(folder, config.assignment)
        check_submission(path, config.assignment, config.answer_ids)
        out.log.append(f"submission: {path}")
        limits, line = limits_for(config, container_resources())
        out.log.append(line)
        user = _grader_user(config)
        if user:
            out.report = grade_as(user, path, config, limits, log=out.log.append)
        else:
            out.report = grade_here(path, config, limits)
        who = (f"the unprivileged user '{user}', which cannot change the grader, its verdicts or the results"
               if user else "root (this container has no user "
               f"'{config.grader_user}'; the export's setup creates one)" if os.geteuid() == 0 else None)
        out.report["platform"]["ran_as"] = who
        if out.report["platform"]["sandbox_unavailable"]:
            out.log.append(f"bubblewrap unavailable: {out.report['platform']['sandbox_unavailable']}")
    except Ungradable as exc:
        out.ungradable = str(exc)
    except Unfit as exc:
        out.problem = str(exc)
    except GradingError as exc:  # after the checks above, only a set-up the course staff must fix
        out.problem = f"The grader refused to grade this submission: {exc}"
    except Exception:  # noqa: BLE001 - a grader bug must still produce results
        out.log.append(traceback.format_exc())
        out.problem = ("The grader failed on this submission (an internal error, not a problem with your notebook). "
                       "Course staff can see the details in the autograder's log; the submission can be graded "
                       "again once it is fixed.")
    out.seconds = time.monotonic() - started
    return out


def _grader_user(config: Config) -> str | None:
    """The user to grade as: only when this process is root and the export's user exists."""
    import pwd

    if os.geteuid() != 0 or not config.grader_user:
        return None
    try:
        return config.grader_user if pwd.getpwnam(config.grader_user).pw_uid != 0 else None
    except KeyError:
        return None


# --- what both platforms say ------------------------------------------------------------------------------
def protection_sentence(report: dict) -> str:
    """One sentence on how the student's code was isolated; never silent about a missing sandbox."""
    from ..sandbox import Protections

    p = report.get("platform") or {}
    if p.get("sandbox_unavailable"):
        text = ("Graded inside the platform's container without the bubblewrap sandbox (here: "
                f"{p['sandbox_unavailable']}); the container, one per submission, was the isolation")
    else:
        text = Protections(**report["protections"]).summary()
        text = text[0].upper() + text[1:]
    if p.get("ran_as"):
        text += f"; the notebook ran as {p['ran_as']}"
    return text + "."


def student_notes(report: dict) -> list[str]:
    """The notes about running the student's notebook (the grader's own, for staff, are left out)."""
    return [n for n in report.get("notes", []) if not n.startswith(("grader:", "graded WITHOUT a sandbox"))]


def test_names(assignment: str) -> dict[str, dict]:
    """grade_id -> {"checks": [...], "visible": bool, "what": one line}, from the instructor's source notebook.

    A test is visible when at least one of its checks is outside the ``### BEGIN HIDDEN TESTS`` region."""
    from .. import checks
    from ..grade import assignments, source

    out = {}
    for spec in source(assignments()[assignment])[1]:
        what = "; ".join(_summary(checks, n) for n in spec.checks) or "no checks"
        out[spec.grade_id] = {"checks": spec.checks, "visible": bool(spec.visible), "what": what}
    return out


def _summary(checks, name: str) -> str:
    try:
        return checks.get(name).summary or name
    except Exception:  # noqa: BLE001 - an unknown name fails its test with a message; here it is only a label
        return name


def capped(results: dict, text_fields=("output", "message")) -> dict:
    """``results`` with the longest texts shortened until its JSON fits ``MAX_RESULTS_BYTES``."""
    cap = 20000
    while len(json.dumps(results)) > MAX_RESULTS_BYTES and cap > 200:
        for t in results.get("tests", []):
            for k in text_fields:
                if isinstance(t.get(k), str) and len(t[k]) > cap:
                    t[k] = t[k][:cap] + "\n[shortened by the grader]"
        for k in text_fields:
            if isinstance(results.get(k), str) and len(results[k]) > 4 * cap:
                results[k] = results[k][:4 * cap] + "\n[shortened by the grader]"
        cap //= 2
    return results
