"""Every read of a file a kernel could have written, and every write the grader makes.

The kernel's box (its working folder, the probe folders) is the student's: anything there may be a
symlink to another student's result, a FIFO that blocks forever, a directory where a file should be, or a
small compressed archive that inflates to gigabytes. So the grader reads it only through this module:

- paths are walked one component at a time from an open directory, with ``O_NOFOLLOW`` (a symlink is
  refused, never followed) and ``O_NONBLOCK`` (a FIFO cannot block the open);
- only regular files are read, and only up to a size fixed before reading;
- ``.npz`` archives must hold uncompressed ``.npy`` members whose headers declare a numeric dtype and a
  size within the cap before any array is loaded (``allow_pickle=False``);
- the grader never opens anything in the box for writing once the kernel has started, except through
  ``write_new`` (exclusive create, no symlinks followed).

The writes of the grader's own outputs (results, feedback pages) are here too: ``write_atomic`` writes a
temporary file and renames it over the target, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex: nothing that needs pickle


class UnsafeFile(Exception):
    """A file the grader refuses to read; the message says why in words."""


class MissingFile(UnsafeFile):
    """The file (or a folder above it) does not exist."""


def _open_dir(base: Path, parts: tuple[str, ...]) -> int:
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise UnsafeFile(f"bad path component {part!r}")
            try:
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                raise MissingFile(f"{'/'.join(parts)} is missing") from None
            except OSError as exc:
                raise UnsafeFile(f"{'/'.join(parts)} is not a plain folder ({exc.strerror})") from None
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_bytes(base: Path, rel: str, cap: int) -> bytes:
    """The bytes of regular file ``base/rel`` (no symlink anywhere below ``base``), at most ``cap`` of them."""
    *dirs, name = [p for p in Path(rel).parts if p != "."]
    dfd = _open_dir(Path(base), tuple(dirs))
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            raise MissingFile(f"{rel} is missing") from None
        except OSError as exc:
            raise UnsafeFile(f"{rel} cannot be opened safely ({exc.strerror}; a symlink?)") from None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{rel} is not a regular file")
        if st.st_size > cap:
            raise UnsafeFile(f"{rel} has {st.st_size} bytes, more than the {cap} allowed")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(cap + 1)
        if len(data) > cap:
            raise UnsafeFile(f"{rel} grew beyond the {cap} bytes allowed while it was read")
        return data
    finally:
        os.close(fd)


def read_json(base: Path, rel: str, cap: int):
    try:
        return json.loads(read_bytes(base, rel, cap))
    except (ValueError, RecursionError) as exc:
        raise UnsafeFile(f"{rel} is not valid JSON ({str(exc)[:100]})") from None


def read_npz(base: Path, rel: str, cap: int, allowed=None) -> dict[str, np.ndarray]:
    """Arrays of an uncompressed ``.npz``; ``allowed(name, shape, dtype)`` returns None or why it is refused.

    Sizes come from each member's ``.npy`` header and are checked against ``cap`` (the total) before any
    array data is read.
    """
    data = read_bytes(base, rel, cap + (1 << 20))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UnsafeFile(f"{rel} is not an .npz archive") from None
    out: dict[str, np.ndarray] = {}
    total = 0
    with zf:
        infos = zf.infolist()
        if len(infos) > 10_000:
            raise UnsafeFile(f"{rel} holds {len(infos)} arrays")
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise UnsafeFile(f"{rel}: member {info.filename!r} is compressed (records are written uncompressed)")
            if not info.filename.endswith(".npy"):
                raise UnsafeFile(f"{rel}: member {info.filename!r} is not an array")
            name = info.filename[:-4]
            with zf.open(info) as member:
                try:
                    version = np.lib.format.read_magic(member)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        raise ValueError(f"unsupported .npy version {version}")
                    shape, fortran, dtype = read_header(member, max_header_size=10_000)
                except (ValueError, SyntaxError, TypeError, EOFError) as exc:
                    raise UnsafeFile(f"{rel}: array {name!r} has a malformed header ({str(exc)[:80]})") from None
                if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
                    raise UnsafeFile(f"{rel}: array {name!r} has dtype {dtype}, not a plain number type")
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
                total += nbytes
                if total > cap:
                    raise UnsafeFile(f"{rel}: its arrays declare more than the {cap} bytes allowed")
                if allowed is not None:
                    why = allowed(name, tuple(shape), dtype)
                    if why:
                        raise UnsafeFile(f"{rel}: array {name!r} {why}")
                raw = bytearray(member.read(nbytes + 1))
                if len(raw) != nbytes:
                    raise UnsafeFile(f"{rel}: array {name!r} holds {len(raw)} bytes where its header declares {nbytes}")
                out[name] = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return out


def write_new(base: Path, rel: str, data: bytes) -> None:
    """Create ``base/rel`` exclusively (its folders too), refusing symlinks; for the grader's probe plans."""
    *dirs, name = Path(rel).parts
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in dirs:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nfd
        ffd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
        with os.fdopen(ffd, "wb") as f:
            f.write(data)
    finally:
        os.close(fd)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def regular_file(path: Path, cap: int) -> bytes:
    """The bytes of a regular file named directly (a submission), without following a final symlink."""
    path = Path(path)
    return read_bytes(path.parent, path.name, cap)
