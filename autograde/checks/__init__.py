"""Checks: one per test cell call, each a plan builder (trusted) and a verdict (trusted).

Test cells in the assignments call ``check("<name>", function)``. In a student's notebook that runs
plan, probe and verdict in the student's own kernel and raises ``AssertionError`` with the feedback
when a property fails. The instructor's grader (``autograde.grade``) never trusts that: it reads the
same ``check`` calls from the instructor's source notebook and runs only the probe in the student's
kernel, judging the raw records itself.

Each chapter's checks live in a module named after the chapter's topic (``bernoulli_masks`` for
chapter 2, ...) that defines a list ``CHECKS``; every such module in this package is found
automatically (``properties`` holds shared verdict helpers and defines none).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import secrets
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..probe import Plan, Raw, run_plan
from ..verdict import CheckResult, Judge



@dataclass(frozen=True)
class Check:
    name: str  # "<target>.<aspect>", e.g. "bernoulli_mask.contract"
    target: str  # the graded function's name, which is also its solution cell's grade_id
    build: Callable[[Plan, np.random.Generator], None]
    judge: Callable[[Judge], None]
    summary: str = ""
    # Speed checks: the ids of the plan's timed calls (fixed, so the grader can lay out one timing cell per
    # repeat before the plan is built) and PyTorch's own operator for the same work, built from the plan in
    # a trusted process; the grader times it between the student's timing cells, under the same load.
    timed: tuple[str, ...] = ()
    reference: Callable[[Plan], Callable[[], object]] | None = None


def registry() -> dict[str, Check]:
    found: dict[str, Check] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for c in getattr(module, "CHECKS", []):
            if c.name in found:
                raise RuntimeError(f"check {c.name} is defined twice")
            found[c.name] = c
    return found


def get(name: str) -> Check:
    checks = registry()
    if name not in checks:
        raise KeyError(f"unknown check {name!r}; known: {', '.join(sorted(checks))}")
    return checks[name]


def cuda_available() -> bool:
    """Whether torch can use a GPU here. Imports torch only where a GPU could exist at all: a CPU-only
    build of torch (no CUDA version in torch/version.py) or a machine without NVIDIA device nodes answers
    without the import, which saves the grader about a second."""
    import importlib.util
    import os
    import re

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        version = open(os.path.join(spec.submodule_search_locations[0], "version.py"), encoding="utf-8").read()
        if re.search(r"^cuda\s*(:[^=]*)?=\s*None", version, re.M) or not os.path.exists("/dev/nvidiactl"):
            return False
    except OSError:
        pass
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if cuda_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be cpu, cuda or auto, not {device!r}")
    return device


def derive_seed(run_seed: int, name: str) -> int:
    """A per-check seed from the grading run's seed, so one recorded number reproduces every plan."""
    digest = hashlib.sha256(f"{run_seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def make_plan(check: Check, device: str, seed: int, cuda: bool | None = None) -> Plan:
    """The check's plan for ``seed``: plain data (numpy arrays and JSON), built without torch."""
    plan = Plan(check=check.name, target=check.target, device=device, seed=seed)
    plan.info["cuda_available"] = cuda_available() if cuda is None else bool(cuda)
    check.build(plan, np.random.default_rng(seed))
    if tuple(plan.timed()) != tuple(check.timed):
        raise RuntimeError(f"check {check.name} declares timed calls {check.timed} but its plan times {plan.timed()}")
    return plan


def judge(check: Check, plan: Plan, raw: Raw) -> CheckResult:
    """The verdict on ``raw``. A verdict never crashes the grading: whatever a submission returned, an
    exception inside the verdict fails this check alone, with a message naming what was unexpected."""
    j = Judge(plan, raw)
    try:
        check.judge(j)
    except Exception as exc:  # noqa: BLE001 - any verdict bug or unexpected record must cost only this check
        import traceback

        frame = traceback.extract_tb(exc.__traceback__)[-1]
        j.fail("judged", f"the grader could not judge what {check.target} returned ({type(exc).__name__}: "
               f"{str(exc)[:200]}, in {frame.name}); this check fails. If your code looks right, show this "
               "message to your instructor: it may be a bug in the grader.")
        j.result.crashed = f"{type(exc).__name__}: {exc} at {frame.filename}:{frame.lineno}"
    return j.result


def probe_here(c: Check, plan: Plan, fn: Callable) -> Raw:
    """Probe ``fn`` in this process (a student's notebook, the tests): timed calls are timed here too,
    alternating with the check's reference operation."""
    return run_plan(plan, fn, reference=c.reference(plan) if c.reference else None)


def check(name: str, fn: Callable, device: str | None = None, seed: int | None = None) -> None:
    """Run one check on ``fn`` in this process and report; raise AssertionError if a property fails.

    This is the student-facing entry point used by the visible tests. ``device`` defaults to CUDA when
    available, else CPU.
    """
    c = get(name)
    plan = make_plan(c, resolve_device(device), secrets.randbits(32) if seed is None else seed)
    result = judge(c, plan, probe_here(c, plan, fn))
    if not result.passed:
        raise AssertionError(f"{name} failed:\n" + result.feedback())
    print(result.feedback())
    return None  # a test cell that ends in a value gets partial credit from nbgrader; return nothing
