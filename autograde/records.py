"""Reading a probe's records back into the grader, validated against the plan that asked for them.

Everything in a record was written by the student's process, so it is the student's word. The grader
makes every record that does not fit its plan worthless, and derives what it can from the arrays:

- only the call ids the plan made; only the statuses the probe writes; strings and lists truncated;
- only the array names a call can produce: ``<call>/out``, ``<call>/after/<i>`` and ``<call>/grad/<i>``
  for the call's i-th tensor argument (same shape as that input), and for a scenario call the names its
  trusted scenario function declares (``@scenario(...)`` in ``autograde.probe``);
- plain numeric dtypes only, each array at most ``ARRAY_FACTOR`` times the call's largest input (at least
  ``MIN_ARRAY_ELEMENTS``), and the whole record at most ``MAX_RECORD_BYTES``;
- a tensor output's reported shape and dtype must agree with the array that came back (the array is what
  the verdict reads; the report cannot claim something else).

A call whose record breaks a rule becomes ``{"status": "invalid", "why": ...}``: the properties that read
that call fail with the reason, the rest of the check and every other check are judged as usual. A
record file that cannot be read safely at all makes every call of its check invalid.
"""

from __future__ import annotations

import fnmatch
import math
import re
from pathlib import Path

import numpy as np

from . import safe_io
from .probe import Plan, Raw, scenario_arrays

MAX_JSON_BYTES = 4 << 20
MAX_RECORD_BYTES = 512 << 20
ARRAY_FACTOR = 8
MIN_ARRAY_ELEMENTS = 1 << 16
STATUSES = {"ok", "raised", "missing", "not_callable", "unavailable", "probe_error"}
MAX_TEXT = 1000
# numpy dtypes each torch dtype may cross as (bfloat16 is widened to float32, complex to its real part)
_NUMPY_OF = {
    "torch.float32": {"float32"}, "torch.float64": {"float64"}, "torch.float16": {"float16"},
    "torch.bfloat16": {"float32"}, "torch.int64": {"int64"}, "torch.int32": {"int32"}, "torch.int16": {"int16"},
    "torch.int8": {"int8"}, "torch.uint8": {"uint8"}, "torch.bool": {"bool"},
    "torch.complex64": {"float32"}, "torch.complex128": {"float64"},
}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


def _text(v, limit: int = MAX_TEXT) -> str:
    return str(v)[:limit]


def _sanitise(v, depth: int = 0):
    """JSON values as the verdicts expect them: bounded depth, strings and lists truncated."""
    if depth > 8:
        return None
    if isinstance(v, str):
        return v[:MAX_TEXT]
    if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
        return v
    if isinstance(v, list):
        return [_sanitise(x, depth + 1) for x in v[:100_000]]
    if isinstance(v, dict):
        return {_text(k, 200): _sanitise(x, depth + 1) for k, x in list(v.items())[:1000]}
    return None


def _tensor_args(call: dict) -> list[str]:
    """Input names of the call's tensor arguments, in the order the probe numbers them."""
    names: list[str] = []

    def walk(v):
        if isinstance(v, dict) and "tensor" in v:
            names.append(v["tensor"])
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for a in call["args"]:
        walk(a)
    for a in call["kwargs"].values():
        walk(a)
    return names


def _largest(call: dict, plan: Plan) -> int:
    sizes = [plan.inputs[n].size for n in _tensor_args(call) if n in plan.inputs]

    def walk(v):
        if isinstance(v, dict) and "size" in v:
            sizes.append(math.prod(v["size"]))
        elif isinstance(v, list) and v and all(isinstance(x, int) for x in v):
            sizes.append(math.prod(v))  # a shape given as a list
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for a in [*call["args"], *call["kwargs"].values()]:
        walk(a)
    return max([MIN_ARRAY_ELEMENTS, *[ARRAY_FACTOR * s for s in sizes]])


def _array_rule(plan: Plan):
    calls = {c["id"]: c for c in plan.calls}

    def allowed(name: str, shape: tuple, dtype) -> str | None:
        if not _NAME.match(name):
            return "has a name the probe never writes"
        cid, _, key = name.partition("/")
        call = calls.get(cid)
        if call is None:
            return f"belongs to call {cid!r}, which the plan never made"
        if math.prod(shape) > _largest(call, plan):
            return f"has {math.prod(shape)} elements, far more than call {cid!r} can produce"
        if call.get("scenario"):
            patterns = scenario_arrays(call["scenario"])
            if not any(fnmatch.fnmatchcase(key, pat) for pat in patterns):
                return f"is not among the facts the scenario of call {cid!r} records"
            return None
        inputs = _tensor_args(call)
        if key == "out":
            return None
        kind, _, idx = key.partition("/")
        if kind in ("after", "grad") and idx.isdigit() and int(idx) < len(inputs):
            want = plan.inputs[inputs[int(idx)]].shape
            return None if tuple(shape) == tuple(want) else f"has shape {tuple(shape)}, but input {idx} has shape {tuple(want)}"
        return "is not an output, input or gradient of its call"

    return allowed


def _tensor_mismatch(desc: dict, array) -> str | None:
    """Why a reported tensor (dtype, shape, device) disagrees with the array that came back, or None."""
    if array is None:
        return "it reports a tensor but no array came back"
    shape, dtype = desc.get("shape"), desc.get("dtype")
    if not isinstance(shape, list) or tuple(shape) != array.shape:
        return f"its reported shape {_text(shape, 80)} is not the returned array's {array.shape}"
    if array.dtype.name not in _NUMPY_OF.get(dtype, set()):
        return f"its reported dtype {_text(dtype, 40)} does not match the returned array's {array.dtype}"
    if not isinstance(desc.get("device"), str):
        return "it reports no device"
    return None


def _check_call(cid: str, rec, arrays: dict, plan_call: dict) -> dict:
    """The call's record as the verdicts may read it, or an 'invalid' record saying why."""
    if not isinstance(rec, dict):
        return {"status": "invalid", "why": "its record is not a JSON object"}
    status = rec.get("status")
    if status not in STATUSES:
        return {"status": "invalid", "why": f"its status {_text(status, 40)!r} is not one the probe writes"}
    out = _sanitise(rec)
    if status == "raised":
        types = rec.get("exc_types")
        if not (isinstance(types, list) and types and all(isinstance(t, str) for t in types)):
            return {"status": "invalid", "why": "it says the call raised, but names no exception type"}
    if status != "ok":
        return out
    desc = rec.get("out")
    if not isinstance(desc, dict) or not isinstance(desc.get("kind"), str):
        return {"status": "invalid", "why": "it says the call returned, but not what"}
    array = arrays.get(f"{cid}/out")
    if plan_call.get("scenario"):
        values = rec.get("values", {})
        if desc["kind"] != "scenario" or not isinstance(values, dict):
            return {"status": "invalid", "why": "a scenario's record must hold its facts"}
        for key, v in values.items():  # a tensor fact's description must agree with its array
            if isinstance(v, dict) and isinstance(v.get("tensor"), dict):
                why = _tensor_mismatch(v["tensor"], arrays.get(f"{cid}/{key}"))
                if why:
                    return {"status": "invalid", "why": f"fact {_text(key, 60)!r}: {why}"}
        return out
    if desc["kind"] == "tensor":
        why = _tensor_mismatch(desc, array)
        if why:
            return {"status": "invalid", "why": why}
    elif array is not None:
        return {"status": "invalid", "why": "it reports no tensor, yet an output array came back"}
    return out


def load(base: Path, rel: str, plan: Plan) -> Raw:
    """The validated record in ``base/rel`` (``raw.json`` and ``arrays.npz``) for ``plan``.

    Never raises for what the kernel wrote: an unreadable record becomes a Raw whose every call is
    'invalid' with the reason.
    """
    ids = [c["id"] for c in plan.calls]
    folder = Path(rel)
    try:
        meta = safe_io.read_json(base, str(folder / "raw.json"), MAX_JSON_BYTES)
        if not isinstance(meta, dict) or not isinstance(meta.get("calls"), dict):
            raise safe_io.UnsafeFile("raw.json holds no calls")
        arrays = safe_io.read_npz(base, str(folder / "arrays.npz"), MAX_RECORD_BYTES, _array_rule(plan))
    except safe_io.MissingFile:
        return Raw({}, {}, {})  # no record at all: the probe never ran (reported per call by the verdict)
    except safe_io.UnsafeFile as exc:
        return Raw({cid: {"status": "invalid", "why": str(exc)} for cid in ids}, {}, {})
    by_id = {c["id"]: c for c in plan.calls}
    calls = {cid: _check_call(cid, meta["calls"][cid], arrays, by_id[cid]) for cid in ids if cid in meta["calls"]}
    # Arrays of a call whose record is invalid or absent are dropped with it.
    arrays = {k: v for k, v in arrays.items() if calls.get(k.partition("/")[0], {}).get("status") not in (None, "invalid")}
    env = _sanitise(meta.get("env")) if isinstance(meta.get("env"), dict) else {}
    return Raw(calls, arrays, env)
