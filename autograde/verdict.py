"""Verdicts: pure functions of a plan and the probe's raw records.

A verdict never calls student code and never trusts anything but the arrays and JSON records of a
``Raw``. It returns a list of ``Property`` results; a check passes when none of them failed
(skipped ones, such as CUDA-only properties on a CPU-only machine, do not count against it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import stats
from .probe import Plan, Raw

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Property:
    name: str
    status: str
    message: str = ""


@dataclass
class CheckResult:
    check: str
    properties: list[Property] = field(default_factory=list)
    crashed: str | None = None  # the verdict raised (for the instructor's notes; the student sees the property)

    @property
    def passed(self) -> bool:
        return all(p.status != FAIL for p in self.properties) and bool(self.properties)

    def feedback(self) -> str:
        failed = [p for p in self.properties if p.status == FAIL]
        skipped = [p for p in self.properties if p.status == SKIP]
        lines = []
        if failed:
            # One line per distinct message: an unimplemented function fails every property the same way.
            by_message: dict[str, list[str]] = {}
            for p in failed:
                by_message.setdefault(p.message, []).append(p.name)
            lines += [f"✗ {', '.join(dict.fromkeys(names))}: {message}" for message, names in by_message.items()]
        else:
            lines.append(f"✓ {self.check}: all {len(self.properties) - len(skipped)} properties hold")
        lines += [f"- skipped {p.name}: {p.message}" for p in skipped]
        return "\n".join(lines)

    def to_json(self) -> dict:
        out = {"check": self.check, "passed": self.passed, "properties": [asdict(p) for p in self.properties]}
        if self.crashed:
            out["crashed"] = self.crashed
        return out


class Judge:
    """Collects properties for one check and gives verdict helpers access to the raw records."""

    def __init__(self, plan: Plan, raw: Raw):
        self.plan = plan
        self.raw = raw
        self.result = CheckResult(plan.check)
        self._stat_tests = 0

    # --- recording -------------------------------------------------------------------------------
    def ok(self, name: str) -> None:
        self.result.properties.append(Property(name, PASS))

    def fail(self, name: str, message: str) -> None:
        self.result.properties.append(Property(name, FAIL, message))

    def skip(self, name: str, message: str) -> None:
        self.result.properties.append(Property(name, SKIP, message))

    def expect(self, name: str, condition: bool, message: str) -> bool:
        (self.ok(name) if condition else self.fail(name, message))
        return bool(condition)

    def binomial(self, n: int, prob: float) -> stats.Interval:
        """An acceptance interval; counts statistical tests against the check's false-failure budget."""
        self._stat_tests += 1
        if self._stat_tests > stats.MAX_STAT_TESTS_PER_CHECK:
            raise RuntimeError(f"check {self.plan.check} runs more than {stats.MAX_STAT_TESTS_PER_CHECK} statistical tests")
        return stats.binomial_interval(n, prob)

    # --- reading ---------------------------------------------------------------------------------
    def record(self, cid: str) -> dict:
        return self.raw.calls.get(cid, {"status": "absent"})

    def array(self, cid: str, what: str = "out") -> np.ndarray | None:
        return self.raw.arrays.get(f"{cid}/{what}")

    def problem(self, cid: str, expect_tensor: bool = True) -> str | None:
        """Why call ``cid`` gave no usable output, in words a student understands; None if it did."""
        rec = self.record(cid)
        status = rec.get("status")
        target = self.plan.target
        if status == "ok":
            if expect_tensor and rec["out"]["kind"] not in ("tensor", "scenario"):
                return f"{target} returned a {rec['out']['kind']}, expected a torch.Tensor"
            return None
        if status == "raised":
            types = rec.get("exc_types", ["Exception"])
            if "NotImplementedError" in types:
                return f"{target} is not implemented yet (it raised NotImplementedError)"
            return f"{target} raised {types[0]}: {rec.get('exc_message', '')}"
        if status == "missing":
            return f"{target} is not defined: run the cell that defines it, and keep its name"
        if status == "not_callable":
            return f"{target} is a {rec.get('type')}, not a function"
        if status == "unavailable":
            return "the grading device is not available to the probe"
        if status == "probe_error":
            return f"the grader could not build the inputs ({rec.get('exc_message', '')})"
        if status == "invalid":
            return f"the grader refused what the notebook recorded for this call: {rec.get('why', '')}"
        return "no result came back from the notebook for this call (the cell timed out or the kernel died)"

    def output(self, name: str, cid: str) -> np.ndarray | None:
        """The output of ``cid``, or record a failure of property ``name`` and return None."""
        why = self.problem(cid)
        if why:
            self.fail(name, why)
            return None
        return self.array(cid)

    def value(self, cid: str, key: str, default=None):
        """A JSON-able fact a scenario recorded for call ``cid``."""
        return self.record(cid).get("values", {}).get(key, default)

    def timing(self, cid: str) -> dict:
        """Seconds of the timed call ``cid`` and of the reference: ``{"student": [...], "reference": [...]}``."""
        t = self.raw.timing.get(cid, {})
        return t if isinstance(t, dict) else {}

    def raised(self, cid: str, exc_name: str) -> bool:
        rec = self.record(cid)
        return rec.get("status") == "raised" and exc_name in rec.get("exc_types", [])

    def input_array(self, name: str) -> np.ndarray:
        return self.plan.inputs[name]
