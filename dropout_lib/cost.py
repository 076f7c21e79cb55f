"""Measuring what dropout costs: bytes kept for the backward pass, peak memory, time, random numbers.

Chapter 9 and ``benchmarks/dropout_cost.py`` share these tools:

- :func:`saved_tensors`: every tensor autograd saves for the backward pass while a function runs, seen
  through PyTorch's own ``torch.autograd.graph.saved_tensors_hooks``; :func:`unique_bytes` adds them up,
  counting a storage saved twice (a ReLU's output that the next ``Linear`` saves too) once.
- :class:`PeakMemory`: the largest number of bytes held by tensors allocated inside a ``with`` block, on
  any device. PyTorch 2.13 keeps allocator statistics for accelerators (``torch.cuda.max_memory_allocated``)
  but not for the CPU, and ``tracemalloc`` sees only Python's own allocator, never a tensor's storage. So
  this class watches every operator's outputs through a ``TorchDispatchMode`` (the dispatcher level below
  autograd, where the backward pass's operators run too) and adds a storage's bytes when it first appears
  and subtracts them when the storage is freed.
- :func:`time_paired`: the time of several operations measured in rounds, each round running every
  operation once in a rotating order, so that a ratio of two operations is taken within a round (a paired
  measurement) and a busy machine slows both sides of it.
- :func:`philox4x32`: the Philox4x32-10 counter-based generator of Salmon et al. (2011), vectorised in
  NumPy, for showing how a counter-based generator works. It reproduces the published known-answer vectors
  (tested in ``tests/test_dropout_lib.py``). PyTorch uses Philox on CUDA and in code that ``torch.compile``
  generates, but exposes no CPU Philox generator to Python, hence this small implementation.
- :func:`machine`: what produced a measurement (CPU model, cores, threads, torch version, date).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch


# --------------------------------------------------------------------------------------------------
# What autograd saves
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Saved:
    """One tensor saved for the backward pass."""

    dtype: str
    shape: tuple
    nbytes: int  # bytes of this tensor's elements (numel * element size)
    storage: int  # identifies the storage, so that one tensor saved twice is counted once


def saved_tensors(fn: Callable[[], object]) -> tuple[object, list[Saved]]:
    """Run ``fn()`` and return its result and every tensor autograd saved for backward meanwhile."""
    found: list[Saved] = []

    def pack(t):
        found.append(Saved(str(t.dtype).replace("torch.", ""), tuple(t.shape), t.numel() * t.element_size(),
                           t.untyped_storage().data_ptr()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return result, found


def unique_bytes(saved: Sequence[Saved]) -> int:
    """Bytes of the saved tensors, counting each storage once."""
    return sum({s.storage: s.nbytes for s in saved}.values())


# --------------------------------------------------------------------------------------------------
# Peak memory
# --------------------------------------------------------------------------------------------------
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402  (documented in PyTorch's extending guide)
from torch.utils._pytree import tree_leaves  # noqa: E402


class PeakMemory(TorchDispatchMode):
    """Bytes of tensor storage allocated inside the block: ``current`` now, ``peak`` at the worst moment.

    Storages that existed before the block (weights, inputs) are not counted: ``peak`` is the extra
    memory the block needed. Each storage is counted once, however many views of it exist, and freed
    when its last reference dies (a weak-reference callback; PyTorch keeps a storage's Python object
    alive as long as the storage itself).
    """

    def __init__(self):
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: dict[int, int] = {}
        
    def _free(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # An output that shares an input's storage (in-place operations, out=, views) allocated nothing.
        inputs = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage._cdata  # the address of the C++ storage: one key per storage while it lives
                if key in self._live or key in inputs or storage.nbytes() == 0:
                    continue
                self._live[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._free, key)
        return out


# --------------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------------
def time_paired(fns: dict[str, Callable[[], object]], rounds: int = 7, min_seconds: float = 2e-3,
                sync: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each function, one value per round.

    A first untimed pass warms caches and chooses, per function, how many calls one measurement repeats
    (enough to last ``min_seconds``, so that the timer's resolution and Python's call overhead do not
    dominate small tensors). Each round then times every function once, starting from a different one
    each round. ``sync`` (``torch.cuda.synchronize``) is called around each measurement on a GPU.
    """
    sync = sync or (lambda: None)
    names = list(fns)
    inner = {}
    for name, fn in fns.items():
        fn()
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        once = max(time.perf_counter() - t0, 1e-7)
        inner[name] = max(1, int(min_seconds / once))
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn, k = fns[name], inner[name]
            sync()
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            sync()
            out[name].append((time.perf_counter() - t0) / k)
    return out


def median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    """The median and the 25th and 75th percentiles (the middle half of the values)."""
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return med, q1, q3


# --------------------------------------------------------------------------------------------------
# Philox4x32-10
# --------------------------------------------------------------------------------------------------
PHILOX_M = (0xD2511F53, 0xCD9E8D57)  # the two round multipliers
PHILOX_W = (0x9E3779B9, 0xBB67AE85)  # the key schedule's increments (golden ratio, sqrt(3) - 1)


def philox4x32(counter: Sequence, key: Sequence[int], rounds: int = 10) -> list[np.ndarray]:
    """Philox4x32 with ``rounds`` rounds: four arrays of 32-bit counters in, four of random words out.

    ``counter`` holds four equally shaped arrays (or integers), the words of each 128-bit counter; ``key``
    two 32-bit integers. Output ``i`` depends only on (key, counter i): no state is carried from one
    counter to the next, which is what lets any thread compute any part of the stream.
    """
    c = [np.asarray(v, dtype=np.uint32) for v in counter]
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    m0, m1 = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1])
    low = np.uint64(0xFFFFFFFF)
    shift = np.uint64(32)
    for r in range(rounds):
        if r:  # bump the key between rounds
            k0, k1 = (k0 + PHILOX_W[0]) & 0xFFFFFFFF, (k1 + PHILOX_W[1]) & 0xFFFFFFFF
        p0 = m0 * c[0].astype(np.uint64)  # a 32 x 32 -> 64-bit product: its high and low halves
        p1 = m1 * c[2].astype(np.uint64)
        hi0, lo0 = (p0 >> shift).astype(np.uint32), (p0 & low).astype(np.uint32)
        hi1, lo1 = (p1 >> shift).astype(np.uint32), (p1 & low).astype(np.uint32)
        c = [hi1 ^ c[1] ^ np.uint32(k0), lo1, hi0 ^ c[3] ^ np.uint32(k1), lo0]
    return c


def philox_uniform(seed: int, start: int, stop: int) -> np.ndarray:
    """Uniform float32 numbers number ``start`` to ``stop - 1`` of the stream for ``seed``, computed directly.

    Number ``i`` is word ``i % 4`` of Philox4x32-10 at counter ``(i // 4, 0, 0, 0)`` with key = the seed's
    two 32-bit halves, turned into a float in [0, 1) from its top 24 bits (exact in float32). Any slice of
    the stream costs only its own length: nothing before ``start`` is generated.
    """
    blocks = np.arange(start // 4, (stop + 3) // 4, dtype=np.uint64)
    zero = np.zeros(blocks.shape, dtype=np.uint32)
    words = philox4x32([blocks.astype(np.uint32), (blocks >> np.uint64(32)).astype(np.uint32), zero, zero],
                       (seed & 0xFFFFFFFF, seed >> 32))
    stream = np.stack(words, axis=1).reshape(-1)  # block b's four words are numbers 4b .. 4b + 3
    first = start - 4 * (start // 4)
    return (stream[first: first + stop - start] >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


# --------------------------------------------------------------------------------------------------
# Which machine
# --------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what the platform module reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_sizes() -> dict[str, int]:
    """Data cache sizes in bytes by level ("L1", "L2", "L3") for CPU 0, read from Linux's sysfs; {} elsewhere."""
    sizes = {}
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(root)):
            if not entry.startswith("index"):
                continue
            with open(f"{root}/{entry}/type") as f:
                kind = f.read().strip()
            with open(f"{root}/{entry}/level") as f:
                level = f.read().strip()
            with open(f"{root}/{entry}/size") as f:
                text = f.read().strip()
            if kind == "Instruction":
                continue
            unit = {"K": 1024, "M": 1024**2}.get(text[-1], 1)
            sizes[f"L{level}"] = int(text.rstrip("KM")) * unit
    except (OSError, ValueError):
        return {}
    return sizes


def machine() -> dict:
    """CPU model, logical cores, caches, the threads torch uses, torch's version, the GPU if any, the load, the date."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "caches": cache_sizes(),
        # Other processes slow a measurement down; the load average says how busy the machine was.
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    return info
