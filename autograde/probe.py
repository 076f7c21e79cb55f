"""The probe: the only part of a check that touches a student's code.

A *plan* (built by the trusted side, see ``autograde.checks``) lists calls of one graded function with
their inputs. ``run_plan`` makes the calls and records raw facts about what came back: the output
tensor, its dtype, device and shape, the exception raised, gradients, the inputs after the call,
timings. Nothing here judges; verdicts are pure functions of these records.

In a student's notebook plan, probe and verdict run in one process. The instructor's grader writes
plans to a scratch folder, the probe runs in the student's kernel (a child process) through
``run_plan_dir``, and the records cross back as JSON plus ``.npz`` arrays (loaded with
``allow_pickle=False``), so a submission can only influence what its functions return.
"""

from __future__ import annotations

import json
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

MAX_MESSAGE = 400

# numpy has no bfloat16: such tensors cross as float32, their real dtype is recorded beside them.
_WIDEN = {"torch.bfloat16": "float32"}


@dataclass
class Plan:
    """What to call and with what. JSON-able except ``inputs`` (numpy arrays, saved as .npz)."""

    check: str
    target: str
    device: str
    seed: int
    calls: list[dict] = field(default_factory=list)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def call(self, cid: str, *args, backward: str | None = None, time_repeats: int = 0, scenario: str | None = None, **kwargs):
        """Add a call of the target. ``args``/``kwargs`` use the encodings below (``tensor``, ``generator``, ...).

        With ``scenario="autograde.checks.<module>:<function>"`` the probe does not call the target
        itself but hands it to that trusted function, ``scenario(target, *args, **kwargs)``, which
        drives it (constructs a class, switches ``.train()``/``.eval()``, passes a callable built from
        the inputs, ...) and returns a dict of raw facts: tensors or arrays (saved as arrays named
        ``<call id>/<key>``) and JSON-able values (saved under ``values``).
        """
        if any(c["id"] == cid for c in self.calls):
            raise ValueError(f"duplicate call id {cid!r} in plan {self.check}")
        if scenario is not None and not scenario.startswith("autograde."):
            raise ValueError("a scenario must be a function of the autograde package")
        self.calls.append(
            {"id": cid, "args": list(args), "kwargs": kwargs, "backward": backward, "time_repeats": time_repeats,
             "scenario": scenario}
        )
        return cid

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("check", "target", "device", "seed", "calls", "info")}

    def files(self) -> dict[str, bytes]:
        from .safe_io import npz_bytes

        return {"plan.json": json.dumps(self.to_json()).encode(), "inputs.npz": npz_bytes(self.inputs)}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files().items():
            (folder / name).write_bytes(data)

    def timed(self) -> list[str]:
        return [c["id"] for c in self.calls if c.get("time_repeats")]

    @classmethod
    def load(cls, folder: Path) -> "Plan":
        meta = json.loads((folder / "plan.json").read_text())
        with np.load(folder / "inputs.npz", allow_pickle=False) as z:
            inputs = {k: z[k] for k in z.files}
        return cls(inputs=inputs, **meta)


# Argument encodings, so that a plan stays plain data.
def tensor(name: str, dtype: str = "float32", requires_grad: bool = False) -> dict:
    return {"tensor": name, "dtype": dtype, "requires_grad": requires_grad}


def generator(seed: int) -> dict:
    return {"generator": int(seed)}


def plan_device() -> dict:
    return {"plan_device": True}


def size(*dims: int) -> dict:
    return {"size": list(dims)}


@dataclass
class Raw:
    """What the probe saw: one record per call id, plus arrays named ``<call id>/<what>``.

    ``timing`` holds, per timed call id, ``{"student": [seconds...], "reference": [seconds...]}``. In the
    instructor's grader it is measured by the grader's own clock from outside the student's process (see
    ``autograde.grade``), never read from the records; in a student's notebook the probe measures it.
    """

    calls: dict[str, dict]
    arrays: dict[str, np.ndarray]
    env: dict
    timing: dict[str, dict] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "arrays.npz", **self.arrays)
        (folder / "raw.json").write_text(json.dumps({"calls": self.calls, "env": self.env}))

    @classmethod
    def load(cls, folder: Path, plan: "Plan") -> "Raw":
        """Read and validate a record the probe wrote (see ``autograde.records``)."""
        from .records import load

        return load(Path(folder), ".", plan)


def _to_numpy(t) -> np.ndarray:
    t = t.detach()
    if str(t.dtype) in _WIDEN or t.dtype.is_complex:
        t = t.float()
    return t.cpu().numpy().copy()


def _exception_record(exc: BaseException) -> dict:
    message = str(exc)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ..."
    return {"exc_types": [c.__name__ for c in type(exc).__mro__], "exc_message": message}


def _describe(value) -> dict:
    import torch

    if isinstance(value, torch.Tensor):
        return {
            "kind": "tensor",
            "dtype": str(value.dtype),
            "device": value.device.type,
            "shape": list(value.shape),
            "requires_grad": bool(value.requires_grad),
        }
    return {"kind": type(value).__module__ + "." + type(value).__qualname__}


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def scenario(*arrays: str):
    """Declare the arrays a scenario function may record (``fnmatch`` patterns of its facts' keys).

    The grader refuses any other array under a scenario call (``autograde.records``). JSON facts are not
    declared: they are small, sanitised, and verdicts read only the keys they know.
    """

    def mark(fn):
        fn.scenario_arrays = tuple(arrays)
        return fn

    return mark


def scenario_arrays(path: str) -> tuple[str, ...]:
    """The array patterns the scenario at ``path`` declared (none if it declared nothing)."""
    return getattr(_scenario(path), "scenario_arrays", ())


def _scenario(path: str) -> Callable:
    import importlib

    module, _, name = path.partition(":")
    if not module.startswith("autograde."):
        raise ValueError("a scenario must be a function of the autograde package")
    return getattr(importlib.import_module(module), name)


def _record_facts(cid: str, facts: dict, arrays: dict) -> dict:
    """Tensors and arrays of a scenario's facts go to ``arrays``; the rest must be JSON-able."""
    import torch

    values = {}
    for key, v in (facts or {}).items():
        if isinstance(v, torch.Tensor):
            arrays[f"{cid}/{key}"] = _to_numpy(v)
            values[key] = {"tensor": _describe(v)}
        elif isinstance(v, np.ndarray):
            arrays[f"{cid}/{key}"] = np.asarray(v)
        else:
            json.dumps(v)  # a scenario returning something that cannot cross as JSON is a bug in the check
            values[key] = v
    return values


# Timed calls waiting for the grader's timing cells (key "<grade_id>/<check>/<call id>"): in the instructor's
# grader the probe does not time anything itself; each timing cell runs one call and the grader's clock,
# outside this process, measures the cell.
TIMED: dict[str, Callable[[], None]] = {}


def run_timed(key: str) -> None:
    """One timed call, the whole body of a grader's timing cell. A missing key (the probe never reached
    it, or the function was missing) raises, so the cell's time counts for nothing."""
    TIMED[key]()


def time_inprocess(fn: Callable[[], object], device: str, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls after one warm-up call, measured in this process (the student's view)."""
    seconds = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        fn()
        _synchronize(device)
        if i:
            seconds.append(time.perf_counter() - t0)
    return seconds


def run_plan(plan: Plan, fn: Callable | None, reference: Callable[[], object] | None = None,
             timed_prefix: str | None = None) -> Raw:
    """Make every call of ``plan`` on ``fn`` and record what happened. Never raises for student errors.

    Timed calls: with ``timed_prefix`` (the instructor's grader) each is registered in ``TIMED`` under
    ``<timed_prefix>/<call id>`` for the grader's timing cells; without it (a student's own check) the
    probe times ``fn`` here, alternating with ``reference`` (PyTorch's own operator) when one is given.
    """
    import torch

    cuda = torch.cuda.is_available()
    env = {"torch": torch.__version__, "cuda_available": cuda}
    calls: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    timing: dict[str, dict] = {}
    if plan.device.startswith("cuda") and not cuda:
        for c in plan.calls:
            calls[c["id"]] = {"status": "unavailable"}
        return Raw(calls, arrays, env)
    if fn is None:
        for c in plan.calls:
            calls[c["id"]] = {"status": "missing"}
        return Raw(calls, arrays, env)
    if not callable(fn) and not all(c.get("scenario") for c in plan.calls):
        for c in plan.calls:
            calls[c["id"]] = {"status": "not_callable", "type": type(fn).__name__}
        return Raw(calls, arrays, env)

    torch.manual_seed(plan.seed)
    np.random.seed(plan.seed % 2**32)
    random.seed(plan.seed)

    for c in plan.calls:
        cid = c["id"]
        rec: dict[str, Any] = {}
        calls[cid] = rec
        tensors: list = []

        def decode(v):
            if isinstance(v, dict) and "tensor" in v:
                t = torch.tensor(plan.inputs[v["tensor"]], device=plan.device).to(getattr(torch, v["dtype"]))
                if v.get("requires_grad"):
                    t.requires_grad_(True)
                tensors.append((v["tensor"], t, t.detach().clone()))
                return t
            if isinstance(v, dict) and "generator" in v:
                return torch.Generator(device=plan.device).manual_seed(v["generator"])
            if isinstance(v, dict) and "plan_device" in v:
                return plan.device
            if isinstance(v, dict) and "size" in v:
                return torch.Size(v["size"])
            if isinstance(v, list):
                return tuple(decode(x) for x in v)
            return v

        try:
            args = [decode(a) for a in c["args"]]
            kwargs = {k: decode(v) for k, v in c["kwargs"].items()}
        except Exception as exc:  # an input the device cannot hold, say; not the student's fault
            rec.update(status="probe_error", **_exception_record(exc))
            continue
        try:
            if c.get("scenario"):
                facts = _scenario(c["scenario"])(fn, *args, **kwargs)
            else:
                out = fn(*args, **kwargs)
            _synchronize(plan.device)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt from student code are answers too
            rec.update(status="raised", **_exception_record(exc))
            rec["where"] = traceback.format_exception_only(type(exc), exc)[-1].strip()[:MAX_MESSAGE]
            continue
        rec["status"] = "ok"
        if c.get("scenario"):
            rec["out"] = {"kind": "scenario"}
            rec["values"] = _record_facts(cid, facts, arrays)
            continue
        rec["out"] = _describe(out)
        if rec["out"]["kind"] == "tensor":
            arrays[f"{cid}/out"] = _to_numpy(out)
        for i, (name, t, before) in enumerate(tensors):
            arrays[f"{cid}/after/{i}"] = _to_numpy(t)
        if c.get("backward"):
            upstream = torch.tensor(plan.inputs[c["backward"]], device=plan.device)
            try:
                out.backward(upstream.to(out.dtype))
                for i, (name, t, _) in enumerate(tensors):
                    if t.requires_grad:
                        if t.grad is None:
                            rec.setdefault("no_grad", []).append(i)
                        else:
                            arrays[f"{cid}/grad/{i}"] = _to_numpy(t.grad)
            except BaseException as exc:
                rec["backward_error"] = _exception_record(exc)
        if c.get("time_repeats"):
            def once(args=args, kwargs=kwargs):
                with torch.no_grad():
                    fn(*args, **kwargs)
                _synchronize(plan.device)

            if timed_prefix is not None:
                TIMED[f"{timed_prefix}/{cid}"] = once
                continue
            try:
                timing[cid] = {"student": time_inprocess(once, plan.device, c["time_repeats"])}
                if reference is not None:
                    timing[cid]["reference"] = time_inprocess(reference, plan.device, c["time_repeats"])
            except BaseException as exc:
                timing[cid] = {"error": _exception_record(exc)["exc_message"]}
    return Raw(calls, arrays, env, timing)


def run_plan_dir(folder: str, namespace: dict) -> None:
    """Grader side, inside the student's kernel: run every plan under ``folder`` and save the records.

    The target is looked up by name in the notebook's globals, so a function the student never
    defined is recorded as missing rather than stopping the cell.
    """
    for sub in sorted(Path(folder).iterdir()):
        if not (sub / "plan.json").exists():
            continue
        try:
            plan = Plan.load(sub)
            run_plan(plan, namespace.get(plan.target), timed_prefix=f"{Path(folder).name}/{sub.name}").save(sub)
        except BaseException as exc:  # keep going: the other plans of this cell still deserve a record
            print(f"autograde: probe for {sub.name} stopped: {type(exc).__name__}")
    print(f"autograde: recorded results for {Path(folder).name}")
