"""Malformed records for every check's verdict: what a submission (or a broken kernel) could hand back.

``mutations(plan, raw)`` yields (label, Raw) pairs, each one realistic record made wrong in one way: a call
missing or with another status, an output of the wrong kind, an array of the wrong shape, dtype or size or
full of NaN, a scenario fact missing or of the wrong type, a timing that is empty or not numbers. Arrays keep
their reported shape and dtype in step with the record, as ``autograde.records`` would insist, so each
mutation is one the grader's validation lets through to the verdict.
"""

from __future__ import annotations

import copy

import numpy as np

from autograde.probe import Raw

_TORCH = {"float32": "torch.float32", "float64": "torch.float64", "float16": "torch.float16",
          "int64": "torch.int64", "int32": "torch.int32", "bool": "torch.bool", "uint8": "torch.uint8"}
RAISED = {"status": "raised", "exc_types": ["RuntimeError", "Exception", "BaseException", "object"],
          "exc_message": "boom", "where": "RuntimeError: boom"}
OTHER_STATUSES = {
    "missing": {"status": "missing"},
    "raised RuntimeError": RAISED,
    "raised NotImplementedError": {**RAISED, "exc_types": ["NotImplementedError", "RuntimeError", "Exception"]},
    "not callable": {"status": "not_callable", "type": "int"},
    "invalid": {"status": "invalid", "why": "refused by the test"},
    "unavailable": {"status": "unavailable"},
    "probe error": {"status": "probe_error", "exc_types": ["RuntimeError"], "exc_message": "no device"},
    "unknown status": {"status": "weird"},
}
WRONG_VALUES = {"deleted": ..., "None": None, "a string": "?", "a list": [1, 2], "a negative number": -1,
                "a dict": {"a": 1}, "NaN": float("nan"), "True": True}


def _arrays_without(raw: Raw, cid: str) -> dict:
    return {k: v for k, v in raw.arrays.items() if not k.startswith(cid + "/")}


def _with(raw: Raw, cid: str, rec, arrays=None) -> Raw:
    calls = copy.deepcopy(raw.calls)
    if rec is None:
        calls.pop(cid, None)
    else:
        calls[cid] = rec
    return Raw(calls, dict(raw.arrays if arrays is None else arrays), dict(raw.env), copy.deepcopy(raw.timing))


def _bad_arrays(a: np.ndarray) -> dict[str, np.ndarray]:
    bad = {
        "flattened and cut": a.reshape(-1)[: max(1, a.size // 2)].copy(),
        "an extra leading axis": a[None].copy(),
        "empty": np.zeros((0,) + a.shape[1:], dtype=a.dtype),
        "0-dim": np.array(a.reshape(-1)[0] if a.size else 0, dtype=a.dtype),
        "int64": a.astype(np.int64) if a.dtype != np.int64 else a.astype(np.float32),
        "bool": a.astype(bool),
    }
    if a.dtype.kind == "f" and a.size:
        bad["all NaN"] = np.full_like(a, np.nan)
        bad["one NaN"] = a.copy()
        bad["one NaN"].reshape(-1)[0] = np.nan
        bad["float16"] = a.astype(np.float16)
    return bad


# Verdicts tell statuses apart only through Judge.problem, so a few stand for all of them in a lean run.
LEAN_STATUSES = ("raised RuntimeError",)
LEAN_ARRAYS = ("flattened and cut", "all NaN")
LEAN_VALUES = ("deleted", "a string")


def mutations(plan, raw: Raw, thorough: bool = True):
    """(label, malformed Raw) for every call of ``plan``. ``thorough=False`` keeps the test suite lean: every
    status, but fewer kinds of wrong facts and arrays, and the copies of the inputs after a call (after/i)
    made wrong one way only."""
    for call in plan.calls:
        cid = call["id"]
        rec = raw.calls.get(cid, {"status": "absent"})
        yield f"{cid}: absent", _with(raw, cid, None, _arrays_without(raw, cid))
        for label, other in OTHER_STATUSES.items():
            if not thorough and label not in LEAN_STATUSES:
                continue
            if other["status"] != rec.get("status") or label == "raised RuntimeError":
                yield f"{cid}: {label}", _with(raw, cid, dict(other), _arrays_without(raw, cid))
        if call.get("scenario"):
            yield f"{cid}: a scenario without facts", _with(
                raw, cid, {"status": "ok", "out": {"kind": "scenario"}, "values": {}}, _arrays_without(raw, cid))
        else:
            yield f"{cid}: returned None", _with(
                raw, cid, {"status": "ok", "out": {"kind": "builtins.NoneType"}}, _arrays_without(raw, cid))
        if rec.get("status") != "ok":
            continue
        for key, value in (rec.get("values") or {}).items():
            for label, wrong in WRONG_VALUES.items():
                if not thorough and label not in LEAN_VALUES:
                    continue
                new = copy.deepcopy(rec)
                if wrong is ...:
                    del new["values"][key]
                else:
                    new["values"][key] = wrong
                yield f"{cid}: fact {key} {label}", _with(raw, cid, new)
        for name in [k for k in raw.arrays if k.startswith(cid + "/")]:
            key = name[len(cid) + 1:]
            for label, bad in _bad_arrays(raw.arrays[name]).items():
                if not thorough and (label not in LEAN_ARRAYS or (key.startswith("after/") and label != "flattened and cut")):
                    continue
                new = copy.deepcopy(rec)
                desc = new["out"] if key == "out" and new["out"].get("kind") == "tensor" else None
                if call.get("scenario") and isinstance(new.get("values", {}).get(key), dict):
                    desc = new["values"][key].get("tensor")
                if isinstance(desc, dict):  # the grader insists a reported tensor matches its array
                    desc["shape"], desc["dtype"] = list(bad.shape), _TORCH.get(bad.dtype.name, "torch.float32")
                arrays = dict(raw.arrays)
                arrays[name] = bad
                yield f"{cid}: array {key} {label}", _with(raw, cid, new, arrays)
            if thorough or not key.startswith("after/"):
                arrays = dict(raw.arrays)
                del arrays[name]
                yield f"{cid}: array {key} missing", _with(raw, cid, copy.deepcopy(rec), arrays)
    for cid in plan.timed():
        for label, timing in (("no timing", {}), ("empty timing", {"student": [], "reference": []}),
                              ("timing of strings", {"student": ["x"], "reference": ["y"]}),
                              ("NaN timing", {"student": [float("nan")], "reference": [float("nan")]}),
                              ("timing not a dict", [1, 2]), ("no reference", {"student": [0.001]})):
            bad = Raw(copy.deepcopy(raw.calls), dict(raw.arrays), dict(raw.env), {**copy.deepcopy(raw.timing), cid: timing})
            yield f"{cid}: {label}", bad
