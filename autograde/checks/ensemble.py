"""Checks for assignment 03_ensemble: the 2^n thinned networks of a tiny network, enumerated.

Contracts (p is the drop probability, q = 1 - p the keep probability). ``f(x, mask)`` evaluates one
thinned network: ``mask`` is one float 0/1 tensor of shape ``(n,)`` on x's device (1 = unit kept), and
a mask with k ones has probability ``q**k * p**(n - k)`` under dropout.

Contract clause (the task text above each graded function) -> check.property that exercises it.

``all_masks(n)``
- a torch.float32 tensor of shape (2**n, n), one mask per row, entries 0.0 and 1.0 -> all_masks.contract."dtype
  float32", "every mask exactly once" (shape and values are part of it)
- on the CPU (no device argument) -> all_masks.contract."on the CPU"
- every one of the 2**n masks exactly once, in any order, the same set on every call -> all_masks.contract.
  "every mask exactly once" (n = 0, 1, 2, 3, 5, 10, 12), "deterministic"
- n = 0 gives shape (1, 0) -> all_masks.contract."every mask exactly once" (at n = 0)
- ValueError if n < 0 -> all_masks.contract."ValueError for n < 0"

``exact_ensemble_mean(f, x, p, n)``
- the sum over all masks of q**k p**(n-k) f(x, m), within 1e-4 relative plus 1e-6 absolute, with the shape of
  f's output -> exact_ensemble_mean.contract."value at p=... (n=...)" (p = 0.1, 0.3, 0.8; n = 6, 8; a network
  with and without a second layer); exact_ensemble_mean.edge."value at p=... (n=..., x of shape ...)" (n = 1,
  n = 10, a single example of shape (4,) and a batch)
- f called exactly once for each mask, one (n,) 0/1 float mask on x's device at a time (masks of weight 0 may be
  skipped) -> exact_ensemble_mean.contract."f called once per mask"; a mask of another shape, dtype, device or
  with values other than 0/1 makes the trusted f raise BadMask, reported by the value properties
- p = 0 gives f(x, ones), p = 1 gives f(x, zeros), no NaN -> exact_ensemble_mean.contract."p=0 gives the full
  network", "p=1 gives the empty network"
- ValueError outside [0, 1] -> exact_ensemble_mean.contract."ValueError outside [0, 1]"

``geometric_ensemble_mean(f, x, p, n)``
- the normalised weighted geometric mean, within 1e-4 relative plus 1e-5 absolute, the shape of f's output ->
  geometric_ensemble_mean.contract."value at p=... (n=...)"; geometric_ensemble_mean.safety."one example (x of
  shape (4,)) at p=0.1, n=8"
- f called as in exact_ensemble_mean -> geometric_ensemble_mean.contract."f called once per mask"
- sums to 1 along the last dimension -> geometric_ensemble_mean.contract."sums to 1 over classes"
- no NaN where the mean is defined: zero probabilities, and p = 0 or 1 where most weights are 0 ->
  geometric_ensemble_mean.contract."p=0 gives the full network", "p=1 gives the empty network";
  geometric_ensemble_mean.safety."zero probabilities at p=..." (p = 0, 1, 0.3)
- no clamping at an epsilon (it biases the answer) -> geometric_ensemble_mean.safety."zero probabilities at p=0.3"
  (a class with geometric mean exactly 0)
- NaN exactly where every class has probability 0 in some network of positive weight (0 / 0), the usual values
  elsewhere -> geometric_ensemble_mean.safety."NaN where every class has geometric mean 0" (even rows undefined,
  odd rows not)
- ValueError outside [0, 1] -> geometric_ensemble_mean.contract."ValueError outside [0, 1]"

``mc_ensemble_mean(f, x, p, n, k, generator=None)``
- each mask keeps each unit independently with probability q -> mc_ensemble_mean.contract."drop rate at p=..."
  (p = 0.1, 0.3, 0.8); mc_ensemble_mean.randomness."units independent at p=..."
- the k masks independent of each other -> mc_ensemble_mean.randomness."samples independent at p=..."
- new on every call -> mc_ensemble_mean.randomness."fresh masks each call"
- f called exactly k times, once per (n,) 0/1 float mask -> mc_ensemble_mean.contract."k samples" (k = 1, 7, 300)
- the plain mean of the k results, within 1e-4 relative plus 1e-6 absolute -> mc_ensemble_mean.contract."mean of
  f over the masks drawn"
- random numbers from generator when given (same masks and result) -> mc_ensemble_mean.randomness."generator
  honoured", "generator seed matters"
- otherwise from PyTorch's global random state -> mc_ensemble_mean.randomness."global random state without a
  generator"
- masks on x.device -> the trusted f raises BadMask otherwise (reported by every value property); testable on a
  CUDA machine only
- p = 0 keeps every unit, p = 1 drops every unit -> mc_ensemble_mean.contract."p=0 keeps every unit", "p=1 drops
  every unit"
- ValueError for p outside [0, 1] or k < 1 -> mc_ensemble_mean.contract."ValueError outside [0, 1]", "ValueError
  for k < 1"

Practice questions -> answer_qN.ensemble."answer" (one letter, any case and spacing).

The probe cannot hand a student's function a callable built in the trusted process, so each call is a
*scenario* (see ``autograde.probe``): trusted code in the child process builds f, a tiny ReLU network
whose weights come from the plan, hands it to the student's function, and records every mask f
receives together with the result. The verdict recomputes the same network in NumPy (float64) from the
plan's arrays and the recorded masks, so it never trusts a number the student's process computed.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..probe import generator, tensor, scenario
from . import Check
from . import properties as prop

RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 swapped keep/drop weights would be invisible
D_IN, HIDDEN2, CLASSES, BATCH = 4, 5, 3, 5
RTOL, ATOL = 1e-4, 1e-6  # float32 networks, sums over up to 4096 masks
GEO_ATOL = 1e-5
MC_K = 300  # masks per Monte Carlo call: 3600 unit draws at n = 12 for each binomial test
MC_N = 12


class BadMask(Exception):
    """Raised by the checks' f when it is given something other than one 0/1 mask of shape (n,)."""


# ---------------------------------------------------------------------------------------------
# The network f, in torch (inside the probe) and in NumPy (inside the verdict)
# ---------------------------------------------------------------------------------------------
# zero_class = CYCLE: in the even rows of a batch every thinned network gives one class probability exactly 0,
# and which class depends on the mask (class 0 when unit 0 is dropped, else class 1 when unit 1 is dropped,
# else class 2). For 0 < p < 1 every class is then 0 in some network of positive weight, so every class's
# weighted geometric mean is 0 and the normalised mean is 0 / 0: undefined, and NaN by the contract. The odd
# rows are untouched, so a correct answer is NaN in exactly the even rows.
CYCLE = "cycle"


def _cycle_class(m0: float, m1: float) -> int:
    return 0 if m0 == 0 else (1 if m1 == 0 else 2)


def _torch_network(x, layers, mask, zero_class=None):
    """softmax of a ReLU network whose first hidden layer (n units) is multiplied by ``mask``.

    ``layers`` is (W1, b1, W2, b2[, W3, b3]); with two layers the mask sits on the inputs of the
    softmax layer, with three it is followed by another ReLU layer. With ``zero_class`` = c, class c's
    probability is multiplied by mask[0] and the distribution renormalised, so thinned networks that
    drop unit 0 give class c probability exactly 0.
    """
    import torch

    h = torch.relu(x @ layers[0] + layers[1]) * mask.to(x.dtype)
    rest = layers[2:]
    for i in range(0, len(rest), 2):
        h = h @ rest[i] + rest[i + 1]
        if i + 2 < len(rest):
            h = torch.relu(h)
    probs = torch.softmax(h, dim=-1)
    if zero_class == CYCLE:
        scale = torch.ones_like(probs)
        zeroed = _cycle_class(float(mask[0]), float(mask[1]))
        rows = scale[0::2] if scale.dim() > 1 else scale
        rows[..., zeroed] = 0.0
        probs = probs * scale
        probs = probs / probs.sum(dim=-1, keepdim=True)
    elif zero_class is not None:
        scale = torch.ones(probs.shape[-1], dtype=probs.dtype, device=probs.device)
        scale[zero_class] = mask[0].to(probs.dtype)
        probs = probs * scale
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def _np_log_probs(x, layers, masks, zero_class=None) -> np.ndarray:
    """log f(x, m) for every row m of ``masks``, float64: shape (M, *x.shape[:-1], classes); -inf for 0."""
    x = np.asarray(x, np.float64)
    w = [np.asarray(a, np.float64) for a in layers]
    masks = np.asarray(masks, np.float64)
    h = np.maximum(x @ w[0] + w[1], 0.0)
    h = masks.reshape((len(masks),) + (1,) * (h.ndim - 1) + (masks.shape[1],)) * h[None]
    rest = w[2:]
    for i in range(0, len(rest), 2):
        h = h @ rest[i] + rest[i + 1]
        if i + 2 < len(rest):
            h = np.maximum(h, 0.0)
    logp = h - h.max(axis=-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=-1, keepdims=True))
    if zero_class == CYCLE:
        probs = np.exp(logp)
        for i, m in enumerate(masks):
            rows = probs[i, 0::2] if probs.ndim > 2 else probs[i]
            rows[..., _cycle_class(m[0], m[1])] = 0.0
        probs /= probs.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore"):
            logp = np.log(probs)
    elif zero_class is not None:
        probs = np.exp(logp)
        keep = masks[:, 0].reshape((len(masks),) + (1,) * (probs.ndim - 1))
        probs[..., zero_class : zero_class + 1] *= keep
        probs /= probs.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore"):
            logp = np.log(probs)
    return logp


def every_mask(n: int) -> np.ndarray:
    """All 2**n masks as rows (float64), row i holding the bits of i."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def mask_weights(masks: np.ndarray, p: float) -> np.ndarray:
    """q**k p**(n-k) for each row (k = kept units); 0.0 ** 0 is 1.0, so p = 0 and p = 1 are exact."""
    n = masks.shape[1]
    kept = masks.sum(axis=1)
    return (1.0 - p) ** kept * p ** (n - kept)


def arithmetic_mean(logp: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, np.exp(logp), axes=1)


def geometric_mean(logp: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """exp(sum_m w_m log f_m), renormalised over the last axis; terms of weight 0 are left out. NaN exactly
    where every class has geometric mean 0 (each is 0 in some thinned network of positive weight): 0 / 0."""
    used = weights > 0
    with np.errstate(invalid="ignore"):
        s = np.tensordot(weights[used], logp[used], axes=1)
        s = s - s.max(axis=-1, keepdims=True)  # -inf - (-inf) = NaN in an undefined row, as the contract says
        g = np.exp(s)
        return g / g.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Scenarios: trusted code that runs in the student's process
# ---------------------------------------------------------------------------------------------
def _recording_f(x, layers, n, zero_class):
    import torch

    seen: list[list[float]] = []  # every mask f received, as Python lists (cheap to record)

    def f(x_in, mask):
        if not isinstance(mask, torch.Tensor):
            raise BadMask(f"f expects the mask as a torch.Tensor, got a {type(mask).__name__}")
        if tuple(mask.shape) != (n,):
            raise BadMask(
                f"f expects one mask of shape ({n},), got shape {tuple(mask.shape)}: call f once per mask, "
                "with a 1-D tensor of length n"
            )
        if not mask.dtype.is_floating_point:
            raise BadMask(f"f expects a float 0/1 mask, got dtype {mask.dtype}: convert with .float()")
        if mask.device.type != x.device.type:
            raise BadMask(f"f expects the mask on x's device ({x.device.type}), got it on {mask.device.type}")
        values = mask.tolist()
        if not all(v == 0.0 or v == 1.0 for v in values):
            raise BadMask(
                "f expects a 0/1 mask (1 = unit kept, 0 = dropped), got values such as "
                f"{sorted(set(values))[:4]}: a thinned network keeps or drops whole units, so a mask of q's "
                "(weight scaling) is not one of them"
            )
        seen.append(values)
        return _torch_network(x_in, layers, mask, zero_class)

    return f, seen


def _facts(out, seen, n) -> dict:
    import torch

    facts = {"masks": np.array(seen, dtype=np.float32).reshape(len(seen), n), "calls": len(seen)}
    if isinstance(out, torch.Tensor):
        facts["out"] = out
    else:
        facts["out_kind"] = type(out).__module__ + "." + type(out).__qualname__
    return facts


@contextmanager
def _one_thread():
    """Run the scenario's thousands of tiny tensor operations on one CPU thread, then restore the setting.

    Measured on a loaded 2-core machine: a check took 5-25 s with PyTorch's default intra-op threads
    (threads spin-waiting on one another for 4x5 matrices) and 0.1-0.2 s with one thread.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@scenario("masks", "out")
def ensemble_scenario(fn, x, layers, p, n, zero_class=None):
    """Call ``fn(f, x, p, n)`` with a recording f; report the result and every mask f received."""
    f, seen = _recording_f(x, layers, n, zero_class)
    with _one_thread():
        out = fn(f, x, p, n)
    return _facts(out, seen, n)


@scenario("masks", "out")
def mc_scenario(fn, x, layers, p, n, k, generator=None, torch_seed=None):
    """Call ``fn(f, x, p, n, k[, generator=...])`` with a recording f (after ``torch.manual_seed(torch_seed)``
    when one is given: without a generator the masks must then repeat)."""
    import torch

    f, seen = _recording_f(x, layers, n, None)
    if torch_seed is not None:
        torch.manual_seed(torch_seed)
    with _one_thread():
        out = fn(f, x, p, n, k) if generator is None else fn(f, x, p, n, k, generator=generator)
    return _facts(out, seen, n)


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------
def _net(plan, rng, n: int, deep: bool, tag: str) -> list[str]:
    """Add a network's weights to the plan's inputs; return their names, in order."""
    dims = [D_IN, n] + ([HIDDEN2] if deep else []) + [CLASSES]
    names = []
    for i in range(len(dims) - 1):
        w, b = f"{tag}_W{i + 1}", f"{tag}_b{i + 1}"
        plan.inputs[w] = (0.8 * rng.normal(size=(dims[i], dims[i + 1]))).astype(np.float32)
        plan.inputs[b] = (0.3 * rng.normal(size=dims[i + 1])).astype(np.float32)
        names += [w, b]
    return names


def _x(plan, rng, name="x", shape=(BATCH, D_IN)):
    plan.inputs[name] = rng.normal(size=shape).astype(np.float32)
    return name


def _case(plan, cid, x, layers, p, n, zero_class=None, scenario="ensemble_scenario", **extra):
    plan.info.setdefault("cases", {})[cid] = {"x": x, "layers": layers, "p": p, "n": n, "zero_class": zero_class, **extra}
    where = f"autograde.checks.ensemble:{scenario}"
    args = [tensor(x), [tensor(a) for a in layers], p, n]
    if scenario == "mc_scenario":
        kwargs = {key: extra[key] for key in ("generator", "torch_seed") if key in extra}
        plan.call(cid, *args, extra["k"], scenario=where, **kwargs)
    else:
        kwargs = {"zero_class": zero_class} if zero_class is not None else {}
        plan.call(cid, *args, scenario=where, **kwargs)


def _value_cases_plan(plan, rng):
    """The cases shared by the exact and geometric means' contract checks."""
    x = _x(plan, rng)
    small = _net(plan, rng, 6, deep=True, tag="s")
    shallow = _net(plan, rng, 6, deep=False, tag="h")
    wide = _net(plan, rng, 8, deep=True, tag="w")
    for p in RATES:
        _case(plan, f"v{p}", x, small, p, 6)
    _case(plan, "shallow", x, shallow, 0.3, 6)
    _case(plan, "n8", x, wide, 0.8, 8)
    _case(plan, "p0", x, small, 0.0, 6)
    _case(plan, "p1", x, small, 1.0, 6)
    _case(plan, "neg", x, small, -0.1, 6)
    _case(plan, "big", x, small, 1.5, 6)


# ---------------------------------------------------------------------------------------------
# Verdict helpers
# ---------------------------------------------------------------------------------------------
def _result(j, name, cid) -> np.ndarray | None:
    """The tensor a scenario call returned, or record why there is none under property ``name``."""
    why = j.problem(cid)
    if why:
        j.fail(name, why)
        return None
    kind = prop.fact(j, cid, "out_kind", str)
    if kind:
        j.fail(name, f"{j.plan.target} returned a {kind}, expected a torch.Tensor")
        return None
    out = j.array(cid)
    if out is None or out.dtype.kind not in "biuf":
        j.fail(name, f"no result of {j.plan.target} came back as numbers (expected a torch.Tensor of f's output shape)")
        return None
    return out


def _case_logp(j, cid, masks):
    c = j.plan.info["cases"][cid]
    layers = [j.input_array(a) for a in c["layers"]]
    return _np_log_probs(j.input_array(c["x"]), layers, masks, c["zero_class"])


def _close(a, b, atol=ATOL) -> bool:
    """Equal shapes, values within tolerance, and NaN in exactly the same places."""
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=atol, equal_nan=True))


def _masks(j, cid) -> np.ndarray | None:
    """The masks f received in call ``cid``, one row each (shape (calls, n)), or None if the record is malformed."""
    n = j.plan.info["cases"][cid]["n"]
    masks = j.array(cid, "masks")
    if masks is None or masks.ndim != 2 or masks.shape[1] != n or masks.dtype.kind not in "biuf":
        return None
    if not np.isin(masks, (0, 1)).all():
        return None
    return masks


def _distinct(j, cid) -> int:
    masks = _masks(j, cid)
    return 0 if masks is None or masks.size == 0 else len(np.unique(masks, axis=0))


def _judge_once(j, cids, name="f called once per mask") -> None:
    """Every mask of positive weight reaches f exactly once, and no mask twice (masks of weight 0, at p = 0 or 1,
    may be skipped)."""
    problems = []
    for cid in cids:
        if j.problem(cid):
            continue  # reported by the value property of this call
        c = j.plan.info["cases"][cid]
        n, p = c["n"], c["p"]
        masks = _masks(j, cid)
        if masks is None:
            problems.append(f"at p = {p}, n = {n} no record of the masks f received came back")
            continue
        needed = int((mask_weights(every_mask(n), p) > 0).sum())
        distinct = _distinct(j, cid)
        got = {tuple(r) for r in masks.astype(np.float64)}
        positive = {tuple(r) for r, w in zip(every_mask(n), mask_weights(every_mask(n), p)) if w > 0}
        if len(masks) != distinct:
            problems.append(f"at p = {p}, n = {n} f was called {len(masks)} times with only {distinct} distinct masks "
                            "(some mask was evaluated more than once)")
        elif not positive <= got:
            problems.append(f"at p = {p}, n = {n} f saw {distinct} distinct masks, but {needed} masks have positive "
                            "weight and each must be evaluated")
    if problems:
        j.fail(name, "; ".join(problems[:2]) + ": call f exactly once for each of the 2**n masks")
    else:
        j.ok(name)


def _judge_value(j, cid, name, kind) -> None:
    """Compare one call's result with the trusted ensemble mean (``kind`` 'arith' or 'geo')."""
    out = _result(j, name, cid)
    if out is None:
        return
    c = j.plan.info["cases"][cid]
    n, p = c["n"], c["p"]
    masks = every_mask(n)
    logp = _case_logp(j, cid, masks)
    w = mask_weights(masks, p)
    arith, geo = arithmetic_mean(logp, w), geometric_mean(logp, w)
    want, atol = (arith, ATOL) if kind == "arith" else (geo, GEO_ATOL)
    if out.shape != want.shape:
        j.fail(name, f"expected a result of shape {want.shape} (the shape of f's output), got {out.shape}")
        return
    if _close(out, want, atol):
        j.ok(name)
        return
    undefined = np.isnan(want)
    if undefined.any() and not np.isnan(out[undefined]).all():
        j.fail(name, f"at p = {p}, n = {n}: where every class has probability exactly 0 in some thinned network of "
                     "positive weight, every class's geometric mean is 0 and the normalised mean is 0 / 0: return NaN "
                     "for that example (torch.softmax of a row of -inf does), not a made-up distribution")
        return
    if np.isnan(out[~undefined]).any():
        if kind == "arith":
            hint = ("weights computed in log space, k log q + (n - k) log p, give 0 * log 0 = NaN at p = 0 or 1; "
                    "q**k * p**(n - k) is exact there (0**0 = 1)")
        else:
            hint = ("0 * log 0 is NaN, and so are weights computed as exp(k log q + (n - k) log p) at p = 0 or 1; "
                    "compute the weights as q**k * p**(n - k) and leave masks of weight 0 out (or use torch.xlogy(w, f)) "
                    "so that a zero weight never meets a zero probability")
        j.fail(name, f"at p = {p} the result contains NaN: {hint}")
        return
    swapped = mask_weights(masks, 1.0 - p)
    uniform = np.full(len(masks), 1.0 / len(masks))
    if kind == "arith":
        alternatives = [
            (arithmetic_mean(logp, swapped), "the weights look swapped: a mask with k kept units has probability q**k * p**(n - k), with q = 1 - p the keep probability"),
            (arithmetic_mean(logp, uniform), "this is the unweighted average over the 2**n masks: weight each mask by its probability q**k * p**(n - k)"),
            (geo, "this is the normalised geometric mean; the arithmetic ensemble mean averages the outputs themselves"),
            (np.tensordot(w, logp, axes=1), "this is the weighted mean of log f; the arithmetic ensemble mean averages f itself"),
        ]
    else:
        log_mean = np.exp(np.tensordot(w[w > 0], logp[w > 0], axes=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            by_batch = log_mean / log_mean.sum(axis=0, keepdims=True) if log_mean.ndim > 1 else None
        alternatives = [
            (arith, "this is the arithmetic ensemble mean; the geometric mean averages log f with the mask weights, then exponentiates and renormalises"),
            (log_mean, "the weighted geometric mean must be renormalised so that it sums to 1 over the classes (the last dimension)"),
            (by_batch, "the result was normalised over the wrong dimension: renormalise over the classes, the last dimension"),
            (geometric_mean(logp, swapped), "the weights look swapped: a mask with k kept units has probability q**k * p**(n - k), with q = 1 - p the keep probability"),
            (geometric_mean(logp, uniform), "this is the unweighted geometric mean over the 2**n masks: weight each log f by its mask's probability q**k * p**(n - k)"),
        ]
    for alt, message in alternatives:
        if alt is not None and _close(out, alt, atol):
            j.fail(name, f"at p = {p}, n = {n}: {message}")
            return
    calls, distinct = prop.fact(j, cid, "calls", int, 0), _distinct(j, cid)
    seen = ""
    if 0 < p < 1 and distinct < 2**n:
        seen = f"; f was called {calls} time{'s' if calls != 1 else ''} with {distinct} distinct masks of the {2**n}"
    extra = ""
    if kind == "geo" and c["zero_class"] is not None:
        extra = (" (here some thinned networks give a class probability exactly 0, so its geometric mean is 0; "
                 "clamping probabilities at a small epsilon before the log biases it)")
    j.fail(
        name,
        f"at p = {p}, n = {n} the result differs from the {'arithmetic' if kind == 'arith' else 'normalised geometric'} "
        f"ensemble mean by up to {np.abs(out - want).max():.3g}{seen}{extra}",
    )


def _judge_edges(j, kind):
    """p = 0 (only the full network counts), p = 1 (only the empty one) and ValueError outside [0, 1]."""
    for cid, name in (("p0", "p=0 gives the full network"), ("p1", "p=1 gives the empty network")):
        _judge_value(j, cid, name, kind)
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big"], "ValueError", [-0.1, 1.5])


# ---------------------------------------------------------------------------------------------
# all_masks
# ---------------------------------------------------------------------------------------------
ALL_MASKS_N = (0, 1, 2, 3, 5, 10, 12)


def _all_masks_plan(plan, rng):
    for n in ALL_MASKS_N:
        plan.call(f"n{n}", n)
    plan.call("again", 5)
    plan.call("neg", -1)


def _all_masks_judge(j):
    first = prop.tensor_out(j, "returns a tensor", "n3")
    if first is None:
        return
    j.ok("returns a tensor")
    dtype = prop.out_dtype(j, "n3")
    j.expect("dtype float32", dtype == "torch.float32", f"expected a float32 tensor of 0.0 and 1.0, got {dtype}")
    where = prop.out_device(j, "n3")
    j.expect("on the CPU", where == "cpu", f"all_masks(n) has no device argument: return the masks on the CPU (the "
                                          f"default device), got {where}; the caller moves them with .to(x.device)")
    problems = []  # (n, what went wrong): the first one is reported, the others would repeat it
    for n in ALL_MASKS_N:
        why = j.problem(f"n{n}")
        if why:
            problems.append((n, why))
            continue
        m = j.array(f"n{n}")
        if m is None:
            problems.append((n, "no tensor came back"))
        elif m.shape != (2**n, n):
            hint = " (transposed?)" if m.shape == (n, 2**n) and n > 0 else ""
            problems.append((n, f"expected shape ({2**n}, {n}), one row per mask, got {m.shape}{hint}"))
        elif not np.isin(m, (0.0, 1.0)).all():
            problems.append((n, f"entries must be 0.0 (dropped) or 1.0 (kept); saw values such as {np.unique(m)[:5]}"))
        elif n > 0 and len(np.unique(m, axis=0)) < 2**n:
            distinct = len(np.unique(m, axis=0))
            problems.append((n, f"the {2**n} rows hold only {distinct} distinct masks, so some masks are repeated and "
                                "others missing (row i could hold the bits of the integer i)"))
    if problems:
        problems.sort(key=lambda item: item[0] == 0)  # n = 0 is the least telling example: report it last
        n, what = problems[0]
        more = f" (and at n = {', '.join(str(b) for b, _ in problems[1:])})" if len(problems) > 1 else ""
        j.fail("every mask exactly once", f"at n = {n}: {what}{more}")
    else:
        j.ok("every mask exactly once")
    again = prop.tensor_out(j, "deterministic", "again", (32, 5))
    once = None if j.problem("n5") else j.array("n5")
    once = once if once is not None and once.shape == (32, 5) else None
    if again is not None:
        j.expect(
            "deterministic", once is not None and {tuple(r) for r in again} == {tuple(r) for r in once},
            "two calls with the same n returned different sets of masks",
        )
    if j.raised("neg", "ValueError"):
        j.ok("ValueError for n < 0")
    else:
        j.fail("ValueError for n < 0", f"expected ValueError for n = -1; saw {prop.raised_what(j, 'neg')}")


# ---------------------------------------------------------------------------------------------
# exact_ensemble_mean and geometric_ensemble_mean
# ---------------------------------------------------------------------------------------------
def _exact_judge(j):
    cids = [f"v{p}" for p in RATES] + ["shallow", "n8"]
    for cid in cids:
        c = j.plan.info["cases"][cid]
        _judge_value(j, cid, f"value at p={c['p']} (n={c['n']})", "arith")
    _judge_once(j, cids + ["p0", "p1"])
    _judge_edges(j, "arith")


def _exact_edge_plan(plan, rng):
    x1 = _x(plan, rng, "x1", (D_IN,))
    one = _net(plan, rng, 1, deep=False, tag="o")
    mid = _net(plan, rng, 8, deep=True, tag="m")
    big = _net(plan, rng, 10, deep=True, tag="b")
    _case(plan, "n1", x1, one, 0.3, 1)
    _case(plan, "single", x1, mid, 0.1, 8)
    _case(plan, "n10", _x(plan, rng), big, 0.8, 10)


def _exact_edge_judge(j):
    for cid in ("n1", "single", "n10"):
        c = j.plan.info["cases"][cid]
        _judge_value(j, cid, f"value at p={c['p']} (n={c['n']}, x of shape {j.input_array(c['x']).shape})", "arith")


def _geo_judge(j):
    cids = [f"v{p}" for p in RATES] + ["shallow", "n8"]
    for cid in cids:
        c = j.plan.info["cases"][cid]
        _judge_value(j, cid, f"value at p={c['p']} (n={c['n']})", "geo")
    _judge_once(j, cids + ["p0", "p1"])
    out = None if j.problem(f"v{RATES[1]}") or prop.fact(j, f"v{RATES[1]}", "out_kind", str) else j.array(f"v{RATES[1]}")
    if out is not None and out.ndim >= 1 and out.size and out.dtype.kind == "f":
        j.expect(
            "sums to 1 over classes", bool(np.allclose(out.sum(axis=-1), 1.0, atol=1e-5)),
            "the renormalised geometric mean is a probability distribution over the last dimension; "
            f"its sums there range from {out.sum(axis=-1).min():.4g} to {out.sum(axis=-1).max():.4g}",
        )
    _judge_edges(j, "geo")


def _geo_safety_plan(plan, rng):
    x = _x(plan, rng)
    net = _net(plan, rng, 6, deep=True, tag="z")
    for p in (0.0, 1.0, 0.3):
        _case(plan, f"zero{p}", x, net, p, 6, zero_class=1)
    x1 = _x(plan, rng, "x1", (D_IN,))
    mid = _net(plan, rng, 8, deep=True, tag="b")
    _case(plan, "single", x1, mid, 0.1, 8)
    _case(plan, "undefined", x, net, 0.3, 6, zero_class=CYCLE)


def _geo_safety_judge(j):
    for p in (0.0, 1.0, 0.3):
        _judge_value(j, f"zero{p}", f"zero probabilities at p={p}", "geo")
    _judge_value(j, "undefined", "NaN where every class has geometric mean 0", "geo")
    _judge_value(j, "single", "one example (x of shape (4,)) at p=0.1, n=8", "geo")


# ---------------------------------------------------------------------------------------------
# mc_ensemble_mean
# ---------------------------------------------------------------------------------------------
def _mc_contract_plan(plan, rng):
    x = _x(plan, rng)
    net = _net(plan, rng, MC_N, deep=True, tag="m")
    for p in RATES:
        _case(plan, f"r{p}", x, net, p, MC_N, scenario="mc_scenario", k=MC_K)
    _case(plan, "k1", x, net, 0.3, MC_N, scenario="mc_scenario", k=1)
    _case(plan, "k7", x, net, 0.3, MC_N, scenario="mc_scenario", k=7)
    _case(plan, "p0", x, net, 0.0, MC_N, scenario="mc_scenario", k=5)
    _case(plan, "p1", x, net, 1.0, MC_N, scenario="mc_scenario", k=5)
    _case(plan, "neg", x, net, -0.1, MC_N, scenario="mc_scenario", k=5)
    _case(plan, "big", x, net, 1.5, MC_N, scenario="mc_scenario", k=5)
    _case(plan, "k0", x, net, 0.3, MC_N, scenario="mc_scenario", k=0)


def _mc_value(j, cid, name="returns a tensor") -> tuple[np.ndarray | None, np.ndarray | None]:
    """(result, masks) of an MC call, or (None, None) after recording why under property ``name``."""
    out = _result(j, name, cid)
    if out is None:
        return None, None
    masks = _masks(j, cid)
    if masks is None:
        j.fail(name, "no usable record of the masks f received came back")
        return None, None
    return out, masks


def _judge_mc_mean(j, cid, out, masks, name="mean of f over the masks drawn") -> bool:
    """The result must be the plain average of f over exactly the masks f received."""
    k = j.plan.info["cases"][cid]["k"]
    if len(masks) == 0:
        j.fail(name, "f was never called: average f over k random masks")
        return False
    outs = np.exp(_case_logp(j, cid, masks))
    total = outs.sum(axis=0)
    want = total / len(masks)
    if out.shape != want.shape:
        j.fail(name, f"expected a result of shape {want.shape} (the shape of f's output), got {out.shape}")
        return False
    if _close(out, want):
        j.ok(name)
        return True
    calls = len(masks)
    for alt, message in (
        (total, "the result is the sum of f over the masks: divide by the number of samples"),
        (total / (calls + 1), "the result is the sum divided by k + 1: divide by the number of samples k"),
        (total / max(calls - 1, 1), "the result is the sum divided by k - 1: divide by the number of samples k"),
        (total / k if k else None, f"the result is the sum over {calls} masks divided by k = {k}: average over exactly the masks you evaluate"),
        (outs[0], "the result is f of the first mask only: average over all k samples"),
    ):
        if alt is not None and _close(out, alt):
            j.fail(name, message)
            return False
    j.fail(
        name,
        f"the result differs by up to {np.abs(out - want).max():.3g} from the average of f over the {calls} masks "
        "your function passed to f: every sample must count once, with weight 1 / k",
    )
    return False


def _mc_contract_judge(j):
    counts = []  # (k, number of f calls) for every call that returned, whatever it returned
    rates = {}
    values = []
    for cid in [f"r{p}" for p in RATES] + ["k1", "k7"]:
        if j.record(cid).get("status") == "ok":
            counts.append((j.plan.info["cases"][cid]["k"], prop.fact(j, cid, "calls", int, 0)))
        out, masks = _mc_value(j, cid)
        if out is not None:
            values.append((cid, out, masks))
            if cid.startswith("r"):
                rates[j.plan.info["cases"][cid]["p"]] = masks
    if counts:
        wrong = list(dict.fromkeys((k, got) for k, got in counts if k != got))
        hint = ""
        if wrong and all(got == k - 1 for k, got in wrong):
            hint = ": one sample short (a loop over range(1, k) or range(k - 1)?)"
        elif wrong and all(got == k + 1 for k, got in wrong):
            hint = ": one sample too many"
        j.expect(
            "k samples", not wrong,
            "f must be called exactly once per sample, k times in all; "
            + ", ".join(f"k = {k}: {got} calls" for k, got in wrong) + hint,
        )
    if not values:
        return
    if len(values) == len(counts) == 5:
        j.ok("returns a tensor")
    for cid, out, masks in values:
        _judge_mc_mean(j, cid, out, masks)
    for p, masks in rates.items():
        if len(masks):
            prop.drop_rate(j, f"drop rate at p={p}", masks == 0, p)
    for cid, value, name in (("p0", 1.0, "p=0 keeps every unit"), ("p1", 0.0, "p=1 drops every unit")):
        out, masks = _mc_value(j, cid, name)
        if out is None:
            continue
        if len(masks) and not (masks == value).all():
            j.fail(name, f"at p = {j.plan.info['cases'][cid]['p']} every mask entry must be {value:g}; saw {np.mean(masks == value):.1%} of them")
            continue
        _judge_mc_mean(j, cid, out, masks, name)
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big"], "ValueError", [-0.1, 1.5])
    if j.raised("k0", "ValueError"):
        j.ok("ValueError for k < 1")
    else:
        j.fail("ValueError for k < 1", f"expected ValueError for k = 0 (an average over no samples is undefined); "
                                       f"saw {prop.raised_what(j, 'k0')}")


def _mc_randomness_plan(plan, rng):
    seed = int(rng.integers(2**31))
    x = _x(plan, rng)
    net = _net(plan, rng, MC_N, deep=True, tag="m")
    for cid, p in (("a", 0.3), ("b", 0.3), ("c", 0.8)):
        _case(plan, cid, x, net, p, MC_N, scenario="mc_scenario", k=MC_K)
    for cid, s in (("g1", seed), ("g2", seed), ("g3", seed + 1)):
        _case(plan, cid, x, net, 0.3, MC_N, scenario="mc_scenario", k=MC_K, generator=generator(s))
    for cid in ("s1", "s2"):  # no generator, the same torch.manual_seed before each call
        _case(plan, cid, x, net, 0.3, MC_N, scenario="mc_scenario", k=MC_K // 10, torch_seed=seed)


def _pairs(a, b):
    n = min(len(a), len(b))
    return a[:n], b[:n]


def _mc_randomness_judge(j):
    name = "global random state without a generator"
    (o1, m1), (o2, m2) = (_mc_value(j, cid, name) for cid in ("s1", "s2"))
    if o1 is not None and o2 is not None:
        j.expect(name, m1.shape == m2.shape and np.array_equal(m1, m2), prop.GLOBAL_STATE)
    got = {}
    for cid in ("a", "b", "c", "g1", "g2", "g3"):
        out, masks = _mc_value(j, cid)
        if out is None:
            return
        if len(masks) < 2:
            j.fail("returns a tensor", f"f was called {len(masks)} times for k = {MC_K}")
            return
        got[cid] = (out, masks == 0)
    j.ok("returns a tensor")
    a, b = _pairs(got["a"][1], got["b"][1])
    prop.independent(
        j, "fresh masks each call", a, b, 0.3, "two calls' masks",
        "the same masks come back on every call (is a seed set inside the function, or are masks cached?)",
    )
    for cid, p in (("a", 0.3), ("c", 0.8)):
        m = got[cid][1]
        half = len(m) // 2
        prop.independent(
            j, f"samples independent at p={p}", m[0 : 2 * half : 2], m[1 : 2 * half : 2], p, "consecutive samples' masks",
            "each of the k samples needs its own, independent mask (is one mask reused, or are samples paired?)",
        )
        prop.independent(
            j, f"units independent at p={p}", m[:, 0::2], m[:, 1::2], p, "neighbouring units",
            "whole masks are kept or dropped together (one random number per sample?): draw one value per unit",
        )
    (o1, m1), (o2, m2), (_, m3) = got["g1"], got["g2"], got["g3"]
    same = m1.shape == m2.shape and np.array_equal(m1, m2) and o1.shape == o2.shape and np.array_equal(o1, o2)
    if j.expect(
        "generator honoured", same,
        "two calls with generators seeded alike gave different masks or results: draw every mask from the "
        "generator argument (torch.rand(n, generator=generator, device=x.device)) instead of the global random state",
    ):
        m1, m3 = _pairs(m1, m3)
        prop.independent(
            j, "generator seed matters", m1, m3, 0.3, "masks from differently seeded generators",
            "the generator's seed seems to be ignored",
        )


# ---------------------------------------------------------------------------------------------
# Practice questions (chapter 3), graded as answer variables
# ---------------------------------------------------------------------------------------------
ANSWERS = [
    prop.answer_check("answer_q1.ensemble", "answer_q1", ["b"],
                      "one particular mask with k kept units has probability q**k * p**(n - k); the binomial coefficient counts how many such masks there are"),
    prop.answer_check("answer_q2.ensemble", "answer_q2", ["b"],
                      "for one softmax layer the log-probabilities are linear in the mask up to a term shared by all classes, so weight scaling equals the normalised geometric mean, not the arithmetic one"),
    prop.answer_check("answer_q3.ensemble", "answer_q3", ["c"],
                      "the standard error of a Monte Carlo average falls like 1 / sqrt(k): halving it takes four times as many samples"),
    prop.answer_check("answer_q4.ensemble", "answer_q4", ["c"],
                      "model.train() also switches BatchNorm to batch statistics; switch only the Dropout modules to training mode"),
    prop.answer_check("answer_q5.ensemble", "answer_q5", ["a"],
                      "for inverted dropout on the inputs the expected penalty is (p / q) * sum_j w_j**2 ||X[:, j]||**2, and p / q = 0.25 at p = 0.2"),
]

CHECKS = [
    Check("all_masks.contract", "all_masks", _all_masks_plan, _all_masks_judge,
          "shape (2**n, n), float32, every 0/1 mask exactly once for n = 0..12, ValueError for n < 0"),
    Check("exact_ensemble_mean.contract", "exact_ensemble_mean", _value_cases_plan, _exact_judge,
          "equals the trusted weighted sum over all masks at p = 0.1, 0.3, 0.8; p = 0 and 1; ValueError"),
    Check("exact_ensemble_mean.edge", "exact_ensemble_mean", _exact_edge_plan, _exact_edge_judge,
          "n = 1, n = 10 (1024 masks), a single example as well as a batch"),
    Check("geometric_ensemble_mean.contract", "geometric_ensemble_mean", _value_cases_plan, _geo_judge,
          "equals the trusted normalised weighted geometric mean at p = 0.1, 0.3, 0.8; sums to 1; p = 0 and 1; ValueError"),
    Check("geometric_ensemble_mean.safety", "geometric_ensemble_mean", _geo_safety_plan, _geo_safety_judge,
          "zero probabilities at p = 0, 1 and 0.3 give no NaN and the right answer; a single example"),
    Check("mc_ensemble_mean.contract", "mc_ensemble_mean", _mc_contract_plan, _mc_contract_judge,
          "k samples, the mean of f over the masks drawn, keep rate at p = 0.1, 0.3, 0.8, p = 0 and 1, ValueError"),
    Check("mc_ensemble_mean.randomness", "mc_ensemble_mean", _mc_randomness_plan, _mc_randomness_judge,
          "masks independent across samples and units, fresh on each call, the generator honoured"),
] + ANSWERS
