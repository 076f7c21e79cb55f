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


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be cpu, cuda or auto, not {device!r}")
    return device


def derive_seed(run_seed: int, name: str) -> int:
    """A per-check seed from the grading run's seed, so one recorded number reproduces every plan."""
    digest = hashlib.sha256(f"{run_seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def make_plan(check: Check, device: str, seed: int) -> Plan:
    import torch

    plan = Plan(check=check.name, target=check.target, device=device, seed=seed)
    plan.info["cuda_available"] = bool(torch.cuda.is_available())
    check.build(plan, np.random.default_rng(seed))
    return plan


def judge(check: Check, plan: Plan, raw: Raw) -> CheckResult:
    j = Judge(plan, raw)
    check.judge(j)
    return j.result


def check(name: str, fn: Callable, device: str | None = None, seed: int | None = None) -> None:
    """Run one check on ``fn`` in this process and report; raise AssertionError if a property fails.

    This is the student-facing entry point used by the visible tests. ``device`` defaults to CUDA when
    available, else CPU.
    """
    c = get(name)
    plan = make_plan(c, resolve_device(device), secrets.randbits(32) if seed is None else seed)
    result = judge(c, plan, run_plan(plan, fn))
    if not result.passed:
        raise AssertionError(f"{name} failed:\n" + result.feedback())
    print(result.feedback())
    return None  # a test cell that ends in a value gets partial credit from nbgrader; return nothing
