"""Launch a student's kernel with limits: ``python -m autograde.sandbox [options] -- KERNEL COMMAND``.

The grader starts every kernel through this wrapper, which applies what the operating system offers
and then ``exec``s the kernel:

- resource limits: address space (``--memory-mb``, CPU grading only: CUDA reserves huge virtual
  ranges), file size, no core dumps;
- Landlock (Linux 5.13+): the kernel may read only the Python installation, the course's packages and
  system folders, and write only its scratch folder, so ``solutions/``, the gradebook and other
  students' submissions are out of reach; with Landlock ABI 4+ TCP bind and connect are refused too;
- the network: the caller prefixes ``unshare -rn`` (a private network namespace) where that works.

Why hand-written: no maintained Python library applies Landlock rules (the syscalls are three and
stable), and bubblewrap/firejail are not installed on typical grading machines. Everything here
degrades to "not applied", which ``probe_support()`` reports so the grader can say so in its notes.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import subprocess
import sys

# Landlock constants (linux/landlock.h)
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_CREATE_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_WRITE_ALL = sum(1 << i for i in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_PR_SET_NO_NEW_PRIVS = 38

READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    try:
        return max(0, _libc().syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_VERSION)))
    except Exception:
        return 0


def apply_landlock(read_paths: list[str], write_paths: list[str]) -> int:
    """Restrict this process (and what it execs) to the given paths. Returns the ABI used, 0 if none."""
    abi = landlock_abi()
    if abi < 1:
        return 0
    libc = _libc()
    write = _FS_WRITE_FILE | _FS_WRITE_ALL | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    fs = READ | write | (_FS_IOCTL_DEV if abi >= 5 else 0)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    attr = _RulesetAttr(fs, net, 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16
    fd = libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return 0
    try:
        for paths, access in ((read_paths, READ), (write_paths, fs)):
            for p in paths:
                if not os.path.exists(p):
                    continue
                pfd = os.open(p, os.O_PATH | os.O_CLOEXEC)
                try:
                    allowed = access if os.path.isdir(p) else access & (_FS_EXECUTE | _FS_READ_FILE | _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0) | (_FS_IOCTL_DEV if abi >= 5 else 0))
                    rule = _PathBeneath(allowed, pfd)
                    libc.syscall(_SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))
                finally:
                    os.close(pfd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return 0
        if libc.syscall(_SYS_RESTRICT, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            return 0
    finally:
        os.close(fd)
    return abi


def apply_rlimits(memory_mb: int | None, file_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    if memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))


def system_read_paths() -> list[str]:
    """What a Python kernel needs to read: the interpreter, its packages, shared libraries, devices."""
    import sysconfig

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    for p in sys.path:
        if p and os.path.isdir(p):
            paths.add(os.path.realpath(p))
    # The course's own packages (an editable install points into the repository: only these folders).
    here = os.path.dirname(os.path.abspath(__file__))
    paths |= {here, os.path.join(os.path.dirname(here), "dropout_lib")}
    paths |= {"/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/opt", "/dev"}
    # Never the repository root or anything above it: solutions/ and the gradebook live there.
    repo = os.path.dirname(here) + os.sep
    return sorted(p for p in paths if os.path.exists(p) and not repo.startswith(p.rstrip(os.sep) + os.sep))


_NET_PREFIX: list[str] | None = None


def network_prefix() -> list[str]:
    """``unshare -rn`` where a private network namespace can be made without privileges, else nothing."""
    global _NET_PREFIX
    if _NET_PREFIX is None:
        exe = shutil.which("unshare")
        ok = False
        if exe:
            try:
                ok = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=10).returncode == 0
            except Exception:
                ok = False
        _NET_PREFIX = [exe, "-rn"] if ok else []
    return list(_NET_PREFIX)


def probe_support() -> dict:
    return {"landlock_abi": landlock_abi(), "network_namespace": bool(network_prefix())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m autograde.sandbox")
    ap.add_argument("--memory-mb", type=int, default=0)
    ap.add_argument("--file-mb", type=int, default=256)
    ap.add_argument("--write", action="append", default=[])
    ap.add_argument("--read", action="append", default=[])
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    _libc().prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: die with the grader that started us
    apply_rlimits(args.memory_mb or None, args.file_mb)
    apply_landlock(system_read_paths() + args.read, args.write)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
