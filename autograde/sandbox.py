"""The sandbox around a student's kernel: the bubblewrap command line and the limits, nothing else.

Every kernel (and everything it starts) runs inside bubblewrap (``bwrap``, Debian package
``bubblewrap``; Flatpak's sandbox), which gives it:

- new user, PID, mount, IPC, network, UTS and cgroup namespaces: it sees only its own processes (its
  own ``/proc``), cannot signal or trace anything outside, has no network (not even loopback to the
  host's services) and no abstract Unix sockets of the host;
- a file system made of read-only binds of the system libraries, the Python installation and the course's
  packages (``autograde/``, ``dropout_lib/``; never the repository root, ``solutions/`` or the
  gradebook), a private ``/tmp``, a minimal ``/dev``, and one writable folder (the *box*) that holds only
  what this kernel may write (its working folder, its home, the probe folders, the IPC sockets);
- an environment built from an allow-list (no variable of the instructor's reaches the kernel);
- ``--die-with-parent`` and a PID namespace: when the grader or the kernel ends, every process inside
  dies, so nothing can outlive its grading and disturb the students graded after it.

Inside, before the kernel starts, ``autograde/_sandbox_inner.py`` (a tiny standalone script) applies
resource limits (processes, address space on CPU, file size, no core dumps, open files) and Landlock
rules where the kernel offers them (an extra layer over the mount namespace, not the only one).

Memory of the whole process tree and the number of processes are limited by a cgroup where the machine
lets the grader make one (cgroup v2 with a writable subtree, or v1's ``memory`` and ``pids``
controllers, e.g. as root); elsewhere ``RLIMIT_NPROC`` plus the grader's memory watchdog do it.
``Protections`` records which of these were in force for each grading.

Why a few lines of cgroup code by hand: no maintained Python library creates a cgroup and moves a
process into it across v1 and v2, and ``systemd-run --scope`` needs a running systemd, which grading
servers and CI containers often lack. The namespaces themselves are bubblewrap's.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
INNER = HERE / "_sandbox_inner.py"
COURSE_PACKAGES = (HERE, HERE.parent / "dropout_lib")
NAMESPACES = ("user", "pid", "mount", "ipc", "network", "uts", "cgroup")
INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu: 'sudo apt-get install bubblewrap'; Fedora: 'sudo dnf install "
    "bubblewrap'); on Ubuntu 24.04 and later also allow it unprivileged user namespaces (an AppArmor "
    "profile for /usr/bin/bwrap, or 'sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0')"
)


class SandboxUnavailable(Exception):
    """The sandbox cannot be set up here; the message says what is missing and how to install it."""


@dataclass
class Protections:
    """What protected one grading; stored in every result and shown in feedback and summaries."""

    sandbox: str  # "bubblewrap 0.8.0" or "none (--no-sandbox)"
    namespaces: list[str] = field(default_factory=list)
    landlock_abi: int = 0
    cgroup: str = "none"  # "v2", "v1 (memory, pids)" or "none"
    process_limit: str = "none"  # "cgroup pids.max 256", "RLIMIT_NPROC 256" or "none"
    memory_limit: str = "watchdog"  # "cgroup ...", "address space + watchdog", "watchdog"

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not self.namespaces:
            return f"graded WITHOUT a sandbox ({self.sandbox}): the student's code ran with the grader's rights"
        parts = [f"{self.sandbox} ({', '.join(self.namespaces)} namespaces)",
                 f"Landlock ABI {self.landlock_abi}" if self.landlock_abi else "no Landlock",
                 f"processes: {self.process_limit}", f"memory: {self.memory_limit}"]
        return "sandbox: " + "; ".join(parts)


# --- what the machine offers ------------------------------------------------------------------------
_SUPPORT: dict | None = None


def landlock_abi() -> int:
    """The Landlock ABI version this Linux kernel offers (0: none)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return max(0, libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
    except Exception:
        return 0


def support() -> dict:
    """Whether bubblewrap runs here (tried once per process, in a few milliseconds), and its version."""
    global _SUPPORT
    if _SUPPORT is None:
        exe = shutil.which("bwrap")
        info = {"bwrap": exe, "version": None, "error": None, "landlock_abi": landlock_abi()}
        if not exe:
            info["error"] = "bubblewrap (bwrap) is not installed"
        else:
            try:
                version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
                info["version"] = version.stdout.strip() or "bubblewrap"
                trial = subprocess.run(
                    [exe, "--unshare-all", "--die-with-parent", *_system_binds(), "--proc", "/proc", "--dev", "/dev",
                     "--", "/bin/true"], capture_output=True, text=True, timeout=20)
                if trial.returncode != 0:
                    info["error"] = f"bubblewrap is installed but cannot create namespaces here ({trial.stderr.strip()[:200]})"
            except (OSError, subprocess.SubprocessError) as exc:
                info["error"] = f"bubblewrap could not be run ({exc})"
        _SUPPORT = info
    return dict(_SUPPORT)


def require() -> dict:
    """``support()``, or ``SandboxUnavailable`` with one paragraph saying what is missing and the fix."""
    info = support()
    if info["error"]:
        raise SandboxUnavailable(
            f"The grader will not run student code without its sandbox, and the sandbox cannot start on this "
            f"machine: {info['error']}. {INSTALL_HINT}. To grade anyway with no isolation at all (only for "
            "code you trust), pass --no-sandbox; every result then says it was graded without a sandbox."
        )
    return info


# --- cgroups -----------------------------------------------------------------------------------------
class Cgroup:
    """A cgroup for one kernel's process tree: memory and process limits, and a way to kill it all.

    ``Cgroup.create`` returns None where the machine lets the grader make none; the caller then relies on
    rlimits and the watchdog. ``prefix()`` is a ``/bin/sh`` command that moves itself into the group and
    then ``exec``s the sandbox, so nothing the kernel starts can be outside it.
    """

    V2_ROOT = Path("/sys/fs/cgroup")
    V1_ROOT = Path("/sys/fs/cgroup")

    def __init__(self, dirs: list[Path], version: str):
        self.dirs, self.version = dirs, version

    @staticmethod
    def prefix_name() -> str:
        """Names start with the batch's run id (if any), so the batch can remove what a dead worker left."""
        run = os.environ.get("AUTOGRADE_RUN_ID")
        return f"autograde-{run}-" if run else "autograde-"

    @classmethod
    def create(cls, memory_mb: int | None, pids: int) -> "Cgroup | None":
        name = f"{cls.prefix_name()}{uuid.uuid4().hex[:12]}"
        try:
            if (cls.V2_ROOT / "cgroup.controllers").is_file():
                return cls._create_v2(name, memory_mb, pids)
            return cls._create_v1(name, memory_mb, pids)
        except (OSError, StopIteration):
            return None

    @classmethod
    def _parents(cls) -> list[Path]:
        """The folders this process's cgroups are in (v2: one; v1: memory's and pids')."""
        own = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path.lstrip("/")
        if (cls.V2_ROOT / "cgroup.controllers").is_file():
            return [cls.V2_ROOT / own.get("", "")]
        return [cls.V1_ROOT / c / own.get(c, "") for c in ("memory", "pids")]

    @classmethod
    def remove_leftovers(cls, run_id: str) -> None:
        """Kill and remove the cgroups of batch ``run_id`` that a dead worker could not remove itself."""
        try:
            parents = cls._parents()
        except OSError:
            return
        version = "v2" if (cls.V2_ROOT / "cgroup.controllers").is_file() else "v1 (memory, pids)"
        for parent in parents:
            for d in parent.glob(f"autograde-{run_id}-*"):
                cls([d], version).remove()

    @classmethod
    def _own_v2(cls) -> Path:
        return cls._parents()[0]

    @classmethod
    def _create_v2(cls, name, memory_mb, pids):
        parent = cls._own_v2()
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(enabled):
            return None  # a process may only move into a leaf of a subtree delegated with both controllers
        d = parent / name
        d.mkdir()
        g = cls([d], "v2")
        try:
            (d / "pids.max").write_text(str(pids))
            if memory_mb:
                (d / "memory.max").write_text(str(memory_mb << 20))
                (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
        except OSError:
            g.remove()
            return None
        return g

    @classmethod
    def _create_v1(cls, name, memory_mb, pids):
        if not all((cls.V1_ROOT / c / "cgroup.procs").is_file() for c in ("memory", "pids")):
            return None
        dirs = []
        g = cls(dirs, "v1 (memory, pids)")
        try:
            for parent in cls._parents():
                d = parent / name
                d.mkdir()
                dirs.append(d)
            (dirs[1] / "pids.max").write_text(str(pids))
            if memory_mb:
                (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_mb << 20))
        except OSError:
            g.remove()
            return None
        return g

    def prefix(self) -> list[str]:
        moves = " && ".join(f"echo 0 > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "autograde-cgroup"]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self.dirs:
            try:
                found |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return sorted(found)

    def oom_kills(self) -> int:
        """How many times the kernel's OOM killer fired inside the group."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        d = self.dirs[0]
        try:
            for line in (d / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def kill_all(self) -> None:
        import signal
        import time

        if self.version == "v2" and (self.dirs[0] / "cgroup.kill").exists():
            try:
                (self.dirs[0] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        for _ in range(50):  # a fork racing the kill lands in the group too, so repeat until it is empty
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    import time

                    time.sleep(0.02)


# --- the command line ----------------------------------------------------------------------------------
def _system_binds() -> list[str]:
    """Read-only system folders; on merged-/usr systems /bin, /lib, ... are symlinks and stay symlinks."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/nsswitch.conf"):
        args += ["--ro-bind-try", f, f]
    return args


def python_paths() -> list[str]:
    """The Python installation the kernel needs: the interpreter's prefixes and install folders, plus the
    course's own packages. Never other ``sys.path`` entries: ``python -m`` puts the current folder there,
    and an instructor grading from inside a course folder would otherwise bind the gradebook and every
    submission into the sandbox."""
    import sysconfig

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths |= {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths = {os.path.realpath(p) for p in paths if os.path.exists(p)}
    repo = str(HERE.parent)
    paths = {p for p in paths if not (repo + os.sep).startswith(p.rstrip(os.sep) + os.sep)}  # never above the repo
    paths |= {str(p) for p in COURSE_PACKAGES if p.is_dir()}
    # Drop folders inside others (one bind covers them) and anything already under /usr.
    kept: list[str] = []
    for p in sorted(paths, key=len):
        if p.startswith("/usr/") or any(p == k or p.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            continue
        kept.append(p)
    return kept


@dataclass
class Spec:
    """One kernel's sandbox: its writable box and its limits."""

    box: Path
    memory_mb: int | None  # None on CUDA: the driver reserves huge virtual ranges
    readonly: tuple[Path, ...] = ()  # the grader's files the kernel must read (its connection file's folder)
    nproc: int = 256
    file_mb: int = 256
    threads: int = 0
    device: str = "cpu"


def environment(spec: Spec) -> dict[str, str]:
    """The kernel's whole environment: an allow-list, nothing inherited from the grader."""
    home = spec.box / "home"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home), "USER": "student", "LOGNAME": "student", "TMPDIR": "/tmp",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MPLBACKEND": "agg", "MPLCONFIGDIR": str(home / ".matplotlib"),
        "IPYTHONDIR": str(home / ".ipython"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
    }
    if spec.threads:
        env.update(OMP_NUM_THREADS=str(spec.threads), MKL_NUM_THREADS=str(spec.threads),
                   OPENBLAS_NUM_THREADS=str(spec.threads))
    for keep in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks numpy needs to compute right
        if keep in os.environ:
            env[keep] = os.environ[keep]
    if spec.device.startswith("cuda") and "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def command(kernel_cmd: list[str], spec: Spec, cgroup: Cgroup | None = None) -> list[str]:
    """``kernel_cmd`` wrapped: [cgroup move] bwrap [namespaces, binds, env] inner-limits kernel."""
    info = require()
    args = [info["bwrap"], "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--hostname", "grader-sandbox", *_system_binds()]
    # The private /tmp first: a bind listed before it would be hidden under it, and the course (its .venv
    # included) may itself live below /tmp, as in a fresh clone made with mktemp.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
             "--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    for p in python_paths():
        args += ["--ro-bind", p, p]
    if spec.device.startswith("cuda"):  # the GPU's device nodes and the driver's files
        for dev in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(dev), str(dev)]
        args += ["--ro-bind-try", "/sys", "/sys"]
    for p in spec.readonly:
        args += ["--ro-bind", str(p), str(p)]
    args += ["--bind", str(spec.box), str(spec.box), "--chdir", str(spec.box / "work"), "--clearenv"]
    for k, v in environment(spec).items():
        args += ["--setenv", k, v]
    inner = [sys.executable, "-I", "-S", str(INNER), "--nproc", str(spec.nproc), "--file-mb", str(spec.file_mb),
             "--write", str(spec.box), "--write", "/tmp", "--write", "/dev"]
    if spec.memory_mb:
        inner += ["--memory-mb", str(spec.memory_mb)]
    for p in python_paths() + [str(p) for p in spec.readonly] + ["/usr", "/etc", "/proc", "/sys"]:
        inner += ["--read", p]
    cmd = [*args, "--", *inner, "--", *kernel_cmd]
    return (cgroup.prefix() if cgroup else []) + cmd


def protections(spec: Spec, cgroup: Cgroup | None, memory_mb: int) -> Protections:
    info = support()
    limit = f"cgroup pids.max {spec.nproc}" if cgroup else (
        f"RLIMIT_NPROC {spec.nproc}" if os.geteuid() != 0 else "none (the grader runs as root and the machine offers no cgroup)")
    if cgroup and memory_mb and not spec.device.startswith("cuda"):
        memory = f"cgroup {memory_mb} MB for the whole process tree + watchdog"
    elif spec.memory_mb:
        memory = f"address space {spec.memory_mb} MB per process + watchdog on the tree's resident memory"
    else:
        memory = "watchdog on the process tree's resident memory"
    return Protections(sandbox=info["version"] or "bubblewrap", namespaces=list(NAMESPACES),
                       landlock_abi=info["landlock_abi"], cgroup=cgroup.version if cgroup else "none",
                       process_limit=limit, memory_limit=memory)


def unsandboxed() -> Protections:
    return Protections(sandbox="none (--no-sandbox)", memory_limit="watchdog on the process tree's resident memory")
