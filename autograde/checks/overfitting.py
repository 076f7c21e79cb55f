"""Checks for assignment 01_overfitting: ``l2_penalty``, ``EarlyStopping`` and ``max_norm_``.

The functions are deterministic, so these checks compare with values computed here from the plan's
inputs (in float64), with tolerances that only absorb float32 rounding. Nothing is statistical.

Contract clause (the task text above each graded function) -> check.property that exercises it. A
property named "... (script)" exists once per scripted loss sequence (SCRIPTS below).

``l2_penalty(parameters, weight_decay)``
- (weight_decay / 2) * the sum of w**2 over every entry of every tensor, relative error 1e-5 (1e-12 in
  float64) -> l2_penalty.contract."value, weight_decay=..." (three parameter lists, 1-D to 3-D tensors)
- parameters is any iterable, a generator such as model.parameters() iterated once -> l2_penalty.contract.
  "accepts a generator"; l2_penalty.safety."model.parameters(), biases included"
- every tensor counts, biases included -> l2_penalty.contract."value, ..."; l2_penalty.safety."model.parameters(),
  biases included"
- "at least one" tensor: a promise of the caller, not a requirement of the function (no empty iterable is passed)
- a 0-dim tensor -> l2_penalty.contract."0-dim tensor"
- the parameters' dtype and device (float64 in, float64 out) -> l2_penalty.contract."dtype", "device" (CUDA only:
  "cuda" is skipped with a note on a CPU-only machine); l2_penalty.safety."float64 preserved", "dtype", "device"
- differentiable, gradient weight_decay * w (no .item(), .detach(), ...) -> l2_penalty.safety."gradient is
  weight_decay * w", "gradient reaches every parameter of a model"
- the parameters are not modified -> l2_penalty.safety."parameters unchanged"
- weight_decay = 0 gives a zero tensor -> l2_penalty.contract."weight_decay = 0 gives 0"
- a negative weight_decay raises ValueError -> l2_penalty.contract."ValueError for negative weight_decay"

``EarlyStopping(patience, min_delta=0.0)``
- an improvement is val_loss < best_loss - min_delta, strictly; equal is not -> "when to stop (tie)",
  "(delta)", "(delta_boundary)" in EarlyStopping.contract/.more
- best_loss starts at inf, best_epoch at None; inf and NaN never improve, the first call included ->
  EarlyStopping.contract."when to stop (nonfinite)", "best_loss and best_epoch (nonfinite)";
  EarlyStopping.more."when to stop (nonfinite_stop)", "best_loss and best_epoch (nonfinite_stop)"
- on an improvement: best_loss = val_loss, best_epoch = t (0-based), a deep copy of the state, the count reset
  -> "best_loss and best_epoch (...)", "restore (reset)", "when to stop (reset)"
- otherwise the count grows and best_loss, best_epoch stay -> "best_loss and best_epoch (...)" (read after every
  call), "when to stop (...)"
- step returns True (a bool) once patience calls in a row brought no improvement -> "when to stop (...)" (every
  script; patience 1 in "(patience1)", a run that never stops in "(never)", random scripts "(random0..2)")
- restore(model) loads the whole saved state, into the trained model and into a fresh one -> "restore (...)"
- with nothing saved (no improvement yet) restore(model) leaves the model as it is -> EarlyStopping.more.
  "restore (nonfinite_stop)"
- best_loss (a float) and best_epoch (an int, or None before any improvement) readable after every call ->
  "best_loss and best_epoch (...)"

``max_norm_(weight, max_norm)``
- every row whose L2 norm exceeds max_norm is rescaled to norm max_norm, keeping its direction, within 1e-5
  relative plus 1e-6 absolute of the exact projection -> max_norm_.contract."rows renormalised, max_norm=...";
  max_norm_.safety."300 x 200 weight", "a single row"
- rows with norm at most max_norm (zero rows included) unchanged, no NaN -> max_norm_.safety."rows inside the
  ball unchanged", "zero row stays zero"
- in place, returning the same tensor object -> max_norm_.contract."rows renormalised, ..." (both are part of it)
- works on nn.Linear's weight (requires grad) called without torch.no_grad(); still the same Parameter, still
  trains -> max_norm_.contract."in place on nn.Linear's weight", "parameter still trains";
  max_norm_.safety."float64 parameter"
- the weight's dtype and device (float64 too) -> max_norm_.safety."float64 preserved", "device" (CUDA only)
- max_norm <= 0 raises ValueError -> max_norm_.contract."ValueError for max_norm <= 0"

Practice questions -> answer_qN.overfitting."answer" (letters in any case and spacing; question 3 a number of
any real type within 1e-6: ``properties.answer_check``).
"""

from __future__ import annotations

import math

import numpy as np

from ..probe import tensor, scenario
from . import Check
from . import properties as prop


# ---------------------------------------------------------------------------------------------
# Scenarios: trusted code that drives the student's object inside the probe's process.
# ---------------------------------------------------------------------------------------------
def _describe_result(out, key: str = "out") -> dict:
    import torch

    if isinstance(out, torch.Tensor):
        return {key: out.detach().clone(), f"{key}_dtype": str(out.dtype), f"{key}_device": out.device.type,
                f"{key}_shape": list(out.shape)}
    facts = {f"{key}_kind": type(out).__name__}
    if isinstance(out, (int, float)):
        facts[f"{key}_number"] = float(out)
    return facts


@scenario("out")
def l2_from_generator(fn, *tensors, weight_decay):
    """Pass the tensors as a generator, the way ``model.parameters()`` arrives."""
    out = fn((t for t in tensors), weight_decay)
    return _describe_result(out)


@scenario("out", "grad[0-9]*")
def l2_from_model(fn, w1, b1, w2, b2, weight_decay):
    """A two-layer model's ``parameters()`` (weights and biases), as a training loop would pass them."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(w1.shape[1], w1.shape[0]), nn.ReLU(), nn.Linear(w2.shape[1], w2.shape[0]))
    model = model.to(device=w1.device, dtype=w1.dtype)
    with torch.no_grad():
        for param, value in zip(model.parameters(), (w1, b1, w2, b2)):
            param.copy_(value)
    out = fn(model.parameters(), weight_decay)
    facts = _describe_result(out)
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.backward()
        for i, param in enumerate(model.parameters()):
            if param.grad is not None:
                facts[f"grad{i}"] = param.grad.detach().clone()
    return facts


def _best_facts(es) -> list:
    """[best_loss, best_epoch] as the object holds them now: a float (inf and NaN included) or None, an int or
    None; or a string saying why an attribute could not be read as that."""
    import numbers

    found = []
    for name, kind in (("best_loss", numbers.Real), ("best_epoch", numbers.Integral)):
        try:
            value = getattr(es, name)
        except Exception as exc:  # a missing attribute is an answer the verdict explains
            found.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        if value is None:
            found.append(None)
        elif isinstance(value, kind) and not isinstance(value, bool):
            found.append(float(value) if name == "best_loss" else int(value))
        else:
            found.append(f"{name} is a {type(value).__name__}, not a{'' if kind is numbers.Real else 'n'} "
                         f"{'float' if kind is numbers.Real else 'int'}")
    return found


@scenario("fresh_weight", "fresh_bias", "same_weight", "same_bias")
def early_stopping_run(cls, losses, weights, biases, patience, min_delta=None):
    """Feed scripted validation losses to ``cls(patience[, min_delta])`` while a Linear layer's weights change
    in place between calls (as an optimizer changes them), reading best_loss and best_epoch after every call;
    then change the weights once more (the training step after the last validation) and call ``restore`` on a
    fresh layer and on the trained one.

    ``weights``/``biases`` hold one state per call plus a final one (index -1).
    """
    import torch
    from torch import nn

    out_f, in_f = weights.shape[1], weights.shape[2]
    layer = nn.Linear(in_f, out_f).to(weights.device)
    es = cls(patience) if min_delta is None else cls(patience, min_delta=min_delta)
    returns, kinds, history = [], [], []
    for t, loss in enumerate(losses):
        with torch.no_grad():
            layer.weight.copy_(weights[t])
            layer.bias.copy_(biases[t])
        stop = es.step(float(loss), layer)
        kinds.append(type(stop).__name__)
        returns.append(bool(stop))
        history.append(_best_facts(es))
        if stop:
            break
    facts = {"returns": returns, "return_kinds": sorted(set(kinds)), "calls": len(returns), "history": history}
    with torch.no_grad():
        layer.weight.copy_(weights[-1])
        layer.bias.copy_(biases[-1])
    fresh = nn.Linear(in_f, out_f).to(weights.device)
    with torch.no_grad():
        fresh.weight.zero_()
        fresh.bias.zero_()
    for key, target in (("fresh", fresh), ("same", layer)):
        try:
            es.restore(target)
            facts[f"{key}_weight"] = target.weight.detach().clone()
            facts[f"{key}_bias"] = target.bias.detach().clone()
        except Exception as exc:
            facts[f"{key}_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return facts


@scenario("out", "after")
def max_norm_plain(fn, weight, max_norm):
    """Call on a plain tensor; record whether the same object came back and the tensor afterwards."""
    out = fn(weight, max_norm)
    facts = _describe_result(out)
    facts["same_object"] = out is weight
    facts["after"] = weight.detach().clone()
    return facts


@scenario("out", "after")
def max_norm_parameter(fn, weight, max_norm):
    """Call on ``nn.Linear(...).weight``, a leaf parameter that requires grad, then check it still trains."""
    import torch
    from torch import nn

    layer = nn.Linear(weight.shape[1], weight.shape[0]).to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
    param = layer.weight
    facts = {}
    try:
        out = fn(param, max_norm)
    except NotImplementedError:
        raise
    except Exception as exc:
        facts["call_error"] = f"{type(exc).__name__}: {exc}"[:300]
        facts["after"] = param.detach().clone()
        return facts
    facts.update(_describe_result(out))
    facts["same_object"] = out is param
    facts["still_parameter"] = layer.weight is param and isinstance(layer.weight, nn.Parameter)
    facts["requires_grad"] = bool(layer.weight.requires_grad)
    facts["after"] = layer.weight.detach().clone()
    layer(torch.ones(2, weight.shape[1], device=weight.device, dtype=weight.dtype)).sum().backward()
    facts["gets_grad"] = layer.weight.grad is not None
    return facts


# ---------------------------------------------------------------------------------------------
# l2_penalty
# ---------------------------------------------------------------------------------------------
L2_SHAPES = ([(6, 4), (6,), (3, 6), (3,)], [(5, 7), (5,)], [(2, 3, 4), (8,), (4, 4)])


def _l2_inputs(plan, rng, tag, shapes, dtype=np.float32):
    names = []
    for i, shape in enumerate(shapes):
        name = f"{tag}{i}"
        plan.inputs[name] = rng.normal(0.0, 1.0, size=shape).astype(dtype)
        names.append(name)
    return names


def _l2_expected(j, names, wd) -> float:
    return 0.5 * wd * sum(float(np.sum(j.input_array(n).astype(np.float64) ** 2)) for n in names)


def _l2_diagnose(j, names, wd, got: float) -> str:
    arrays = [j.input_array(n).astype(np.float64) for n in names]
    s = sum(float(np.sum(a**2)) for a in arrays)
    candidates = [
        (wd * s, "the value is twice the expected one: the penalty is (weight_decay / 2) * sum(w**2); without "
                 "the 1/2 its gradient is 2 * weight_decay * w instead of weight_decay * w (what SGD's weight_decay adds)"),
        (0.25 * wd * s, "the value is half the expected one: the 1/2 was applied twice"),
        (0.5 * wd * sum(float(np.sum(a**2)) for a in arrays if a.ndim >= 2),
         "biases left out: the penalty covers every tensor in parameters, 1-D ones included"),
        (0.5 * wd * float(np.sum(arrays[0] ** 2)), "only the first tensor was used: loop over all of parameters"),
        (0.5 * wd * float(np.sum(arrays[-1] ** 2)), "only the last tensor counted: add each tensor's sum of squares to a total"),
        (0.5 * wd * sum(float(np.mean(a**2)) for a in arrays), "mean instead of sum: sum the squared entries"),
        (0.5 * wd * sum(float(np.sqrt(np.sum(a**2))) for a in arrays), "norms instead of squared norms: sum w**2, do not take the square root"),
        (0.5 * wd * math.sqrt(s), "the square root of the sum of squares: the penalty uses the squared norm"),
        (0.5 * wd * sum(float(np.sum(np.abs(a))) for a in arrays), "absolute values (an L1 penalty) instead of squares"),
        (0.5 * s, "weight_decay was ignored"),
        (s, "weight_decay and the 1/2 were both left out"),
    ]
    for value, message in candidates:
        if math.isclose(got, value, rel_tol=1e-4, abs_tol=1e-9):
            return message
    return "expected (weight_decay / 2) * (sum of the squared entries of every tensor)"


def _l2_value(j, name, cid, names, wd, rtol=1e-5) -> bool:
    """Record property ``name``: call ``cid`` returned the penalty of ``names`` at ``wd``."""
    why = j.problem(cid)
    if why:
        j.fail(name, why)
        return False
    got_arr = j.array(cid, "out")
    if got_arr is None:
        kind = prop.fact(j, cid, "out_kind", str) or "value that is not a tensor"
        j.fail(name, f"l2_penalty returned a {kind}, expected a 0-dim torch.Tensor (keep the computation in torch)")
        return False
    expected = _l2_expected(j, names, wd)
    if got_arr.size != 1 or got_arr.dtype.kind not in "biuf":
        j.fail(name, f"expected one number (a 0-dim tensor), got {got_arr.dtype} values of shape {list(got_arr.shape)}")
        return False
    got = float(got_arr.reshape(()))
    if math.isclose(got, expected, rel_tol=rtol, abs_tol=1e-12):
        j.ok(name)
        return True
    j.fail(name, f"expected {expected:.6g}, got {got:.6g}: {_l2_diagnose(j, names, wd, got)}")
    return False


def _l2_contract_plan(plan, rng):
    decays = [float(rng.uniform(0.05, 0.5)), float(rng.uniform(1.0, 3.0)), float(10 ** rng.uniform(-4, -2))]
    plan.info["decays"] = decays
    plan.info["sets"] = []
    for k, (shapes, wd) in enumerate(zip(L2_SHAPES, decays)):
        names = _l2_inputs(plan, rng, f"v{k}_", shapes)
        plan.info["sets"].append(names)
        plan.call(f"v{k}", [tensor(n) for n in names], wd)
    gen_names = _l2_inputs(plan, rng, "g_", [(4, 5), (4,), (2, 4), (2,)])
    plan.info["gen"] = gen_names
    plan.info["gen_wd"] = wd_gen = float(rng.uniform(0.1, 0.9))
    plan.call("gen", *[tensor(n) for n in gen_names], weight_decay=wd_gen,
              scenario="autograde.checks.overfitting:l2_from_generator")
    plan.call("zero", [tensor(n) for n in plan.info["sets"][0]], 0.0)
    plan.call("neg", [tensor(n) for n in plan.info["sets"][0]], -0.1)


def _l2_scalar_and_type(j, cid, dtype):
    arr = j.array(cid)
    j.expect("0-dim tensor", arr is not None and arr.shape == (),
             f"expected a 0-dim tensor (a scalar, shape []), got shape {None if arr is None else list(arr.shape)}: "
             "sum to one number")
    prop.dtype_device(j, cid, dtype, j.plan.device)


def _l2_contract_judge(j):
    first = prop.tensor_out(j, "returns a tensor", "v0")
    if first is None:
        return
    j.ok("returns a tensor")
    _l2_scalar_and_type(j, "v0", "torch.float32")
    prop.cuda_note(j)
    for k, (names, wd) in enumerate(zip(j.plan.info["sets"], j.plan.info["decays"])):
        _l2_value(j, f"value, weight_decay={wd:.3g}", f"v{k}", names, wd)
    _l2_generator(j)
    zero = prop.tensor_out(j, "weight_decay = 0 gives 0", "zero", ())
    if zero is not None:
        j.expect("weight_decay = 0 gives 0", float(zero) == 0.0, f"with weight_decay = 0 the penalty must be 0, got {float(zero)}")
    prop_raises(j, "ValueError for negative weight_decay", "neg", "ValueError", "weight_decay = -0.1")


def _l2_generator(j):
    name = "accepts a generator"
    names, wd = j.plan.info["gen"], j.plan.info["gen_wd"]
    problem = j.problem("gen")
    if problem and "TypeError" in problem:
        j.fail(name, f"with a generator of tensors (as model.parameters() gives) {problem}: a generator has no len() "
               "and no indexing; loop over it once")
        return
    if problem:
        j.fail(name, problem)
        return
    arr = j.array("gen", "out")
    got = float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 and arr.dtype.kind in "biuf" \
        else prop.fact(j, "gen", "out_number", float)
    expected = _l2_expected(j, names, wd)
    if got == 0.0 and expected > 0:
        j.fail(name, "a generator of tensors (as model.parameters() gives) gave 0: it was iterated twice, and a "
               "generator is empty the second time; iterate once (or make a list first)")
        return
    if got is not None and math.isclose(got, _l2_expected(j, names[1:], wd), rel_tol=1e-5):
        j.fail(name, "with a generator the first tensor was missing: peeking at it (next(iter(parameters))) consumes "
               "it; make a list first")
        return
    _l2_value(j, name, "gen", names, wd)


def prop_raises(j, name, cid, exc, what):
    if j.raised(cid, exc):
        j.ok(name)
        return
    j.fail(name, f"expected {exc} for {what}; saw {prop.raised_what(j, cid)}")


def _l2_safety_plan(plan, rng):
    wd = float(rng.uniform(0.2, 2.0))
    plan.info["wd"] = wd
    names = _l2_inputs(plan, rng, "s", [(5, 3), (5,), (2, 5), (2,)])
    plan.info["names"] = names
    plan.inputs["g"] = np.array(rng.uniform(0.5, 2.0), dtype=np.float32)
    plan.call("grad", [tensor(n, requires_grad=True) for n in names], wd, backward="g")
    plan.call("plain", [tensor(n) for n in names], wd)
    names64 = _l2_inputs(plan, rng, "d", [(7, 3), (7,)], dtype=np.float64)
    plan.info["names64"] = names64
    plan.call("f64", [tensor(n, "float64") for n in names64], wd)
    model = _l2_inputs(plan, rng, "m", [(6, 4), (6,), (3, 6), (3,)])
    plan.info["model"] = model
    plan.call("model", *[tensor(n) for n in model], weight_decay=wd, scenario="autograde.checks.overfitting:l2_from_model")


def _l2_safety_judge(j):
    wd, names = j.plan.info["wd"], j.plan.info["names"]
    why = j.problem("grad")
    rec = j.record("grad")
    name = "gradient is weight_decay * w"
    if why:
        j.fail(name, why)
    elif isinstance(rec.get("backward_error"), dict):
        j.fail(name, f"backward failed: {rec['backward_error'].get('exc_message', '')} (is the result a Python number, "
               "or detached with .item(), .detach() or torch.tensor(...)?)")
    else:
        g = float(j.input_array("g"))
        problems = []
        for i, n in enumerate(names):
            grad = j.array("grad", f"grad/{i}")
            w = j.input_array(n).astype(np.float64)
            if grad is None or grad.shape != w.shape:
                problems.append("a parameter received no gradient: keep the computation in torch (no .item(), .detach() "
                                "or torch.tensor(...) around the result)")
                break
            if not np.allclose(grad, g * wd * w, rtol=1e-5, atol=1e-7):
                if np.allclose(grad, 2 * g * wd * w, rtol=1e-5, atol=1e-7):
                    problems.append("the gradient is 2 * weight_decay * w: the penalty needs the factor 1/2 so that its "
                                    "gradient is weight_decay * w, as SGD's weight_decay")
                else:
                    problems.append("the gradient with respect to each parameter should be weight_decay * w")
                break
        if problems:
            j.fail(name, problems[0])
        else:
            j.ok(name)
    if not j.problem("plain"):
        after = [j.array("plain", f"after/{i}") for i in range(len(names))]
        changed = [n for a, n in zip(after, names) if a is None or a.shape != j.input_array(n).shape
                   or not np.array_equal(a, j.input_array(n))]
        j.expect("parameters unchanged", not changed,
                 "the parameters were modified: compute w * w or w.pow(2) into new tensors; never square in place "
                 "(w.pow_(2), w.mul_(w))")
    else:
        j.fail("parameters unchanged", j.problem("plain"))
    f64 = prop.tensor_out(j, "float64 preserved", "f64")
    if f64 is not None:
        dtype = prop.out_dtype(j, "f64")
        if dtype != "torch.float64":
            j.fail("float64 preserved", f"float64 parameters must give a float64 penalty; got {dtype} (is something "
                   "created as float32 on the way, e.g. torch.tensor(0.0) as the starting total, or .float()?)")
        else:
            _l2_value(j, "float64 preserved", "f64", j.plan.info["names64"], wd, rtol=1e-12)
    model_name = "model.parameters(), biases included"
    if _l2_value(j, model_name, "model", j.plan.info["model"], wd):
        grads = [j.array("model", f"grad{i}") for i in range(len(j.plan.info["model"]))]
        grads_ok = all(
            g is not None and g.shape == j.input_array(n).shape
            and np.allclose(g, wd * j.input_array(n), rtol=1e-5, atol=1e-7)
            for g, n in zip(grads, j.plan.info["model"])
        )
        j.expect("gradient reaches every parameter of a model", grads_ok,
                 "backward through the penalty of model.parameters() should give each parameter weight_decay * w")
    prop.dtype_device(j, "plain", "torch.float32", j.plan.device)
    prop.cuda_note(j)


# ---------------------------------------------------------------------------------------------
# EarlyStopping
# ---------------------------------------------------------------------------------------------
def simulate(losses, patience, min_delta, *, reset=True, ties=False, ignore_delta=False, offset=0, first_always=False,
             stop_at_true=True):
    """The stopping rule, and its usual mistakes as switches. Returns (returns, best_loss, best_epoch, history)
    with history[t] = [best_loss, best_epoch] after call t.

    best_loss starts at inf and best_epoch at None; a call improves when loss < best_loss - min_delta, so a loss
    of inf or NaN never improves (NaN compares false), the first call included. With ``stop_at_true`` the calls
    end at the first True, as in a training loop; without it every loss is fed.
    """
    best, best_epoch, count, returns, history = math.inf, None, 0, [], []
    delta = 0.0 if ignore_delta else min_delta
    for t, loss in enumerate(losses):
        improved = loss <= best - delta if ties else loss < best - delta
        if first_always and t == 0:
            improved = True
        if improved:
            best, best_epoch = loss, t
            if reset:
                count = 0
        else:
            count += 1
        stop = count >= patience + offset
        returns.append(stop)
        history.append([best, best_epoch])
        if stop and stop_at_true:
            break
    return returns, best, best_epoch, history


MISTAKES = [
    (dict(offset=-1), "it stops one call early: stop when the number of calls without improvement reaches patience"),
    (dict(offset=1), "it stops one call late: stop as soon as the count of calls without improvement equals patience"),
    (dict(reset=False), "the count of calls without improvement is never reset after an improvement"),
    (dict(ties=True), "a loss equal to best_loss - min_delta counted as an improvement (<= instead of <): "
                      "an improvement must be strictly better"),
    (dict(ignore_delta=True), "min_delta is ignored: an improvement must beat best_loss - min_delta"),
    (dict(first_always=True), "the first call counted as an improvement although its loss was inf or NaN: best_loss "
                              "starts at inf, and a call improves only when val_loss < best_loss - min_delta"),
]

# Scripted sequences (patience, min_delta, losses); the values are multiples of 1/16, exact in binary,
# so ties are exact. Each one catches a mistake the others might not.
SCRIPTS = {
    # Improvements after a setback: a count that is not reset stops early; off-by-one stops early/late.
    "reset": (3, None, [1.0, 0.875, 0.9375, 0.75, 0.8125, 0.875, 0.9375, 1.0, 1.0625, 0.5]),
    # An exact tie with the best loss is not an improvement.
    "tie": (2, 0.0, [0.5, 0.375, 0.375, 0.4375, 0.3125, 0.375, 0.4375, 0.25, 0.5]),
    # patience 1: the first call without improvement stops.
    "patience1": (1, 0.0, [1.0, 0.75, 0.5, 0.5625, 0.25]),
    # min_delta: small gains are not improvements, and the boundary (exactly min_delta better) is not one.
    "delta": (2, 0.25, [2.0, 1.5, 1.375, 1.25, 1.125, 1.0, 0.5]),
    "delta_boundary": (3, 0.125, [1.0, 0.875, 0.8125, 0.75, 0.875, 0.5]),
    # Never stops: the best state is the last one fed.
    "never": (3, 0.0, [1.0, 0.875, 0.8125, 0.75, 0.625, 0.5]),
    # inf and NaN never improve, not even on the first call; the first finite loss does.
    "nonfinite": (3, 0.0, [math.inf, math.nan, 1.0, 0.875, math.nan, 0.9375, 1.0, 0.5]),
    # Stops before any improvement: best_loss stays inf, best_epoch None, and restore() leaves the model alone.
    "nonfinite_stop": (2, 0.0, [math.nan, math.inf, 0.5]),
}
VISIBLE_SCRIPTS = ("reset", "tie", "nonfinite")
HIDDEN_SCRIPTS = ("patience1", "delta", "delta_boundary", "never", "nonfinite_stop")


def _random_script(rng):
    patience = int(rng.integers(1, 5))
    min_delta = float(rng.choice([0.0, 0.0625, 0.125]))
    steps = rng.choice([-3, -2, -1, 0, 0, 1, 2], size=14)
    levels = np.clip(24 + np.cumsum(steps), 1, 48)
    return patience, min_delta, [float(v) / 16 for v in levels]


def _es_plan(plan, rng, names, n_random=0):
    scripts = {n: SCRIPTS[n] for n in names}
    for k in range(n_random):
        scripts[f"random{k}"] = _random_script(rng)
    plan.info["scripts"] = {}
    for cid, (patience, min_delta, losses) in scripts.items():
        out_f, in_f = int(rng.integers(2, 5)), int(rng.integers(2, 6))
        plan.inputs[f"{cid}_w"] = rng.normal(size=(len(losses) + 1, out_f, in_f)).astype(np.float32)
        plan.inputs[f"{cid}_b"] = rng.normal(size=(len(losses) + 1, out_f)).astype(np.float32)
        # inf and NaN travel as the strings "inf" and "nan" (plain JSON has neither; the scenario and the verdict
        # turn them back into floats with float()).
        encoded = [v if math.isfinite(v) else str(v) for v in losses]
        plan.info["scripts"][cid] = [patience, min_delta, encoded]
        kwargs = {} if min_delta is None else {"min_delta": min_delta}
        plan.call(cid, encoded, tensor(f"{cid}_w"), tensor(f"{cid}_b"), patience,
                  scenario="autograde.checks.overfitting:early_stopping_run", **kwargs)


def _es_judge(j):
    for cid, (patience, min_delta, losses) in j.plan.info["scripts"].items():
        _es_judge_script(j, cid, patience, 0.0 if min_delta is None else min_delta, [float(v) for v in losses])


def _fmt(losses):
    return "[" + ", ".join(f"{v:g}" for v in losses) + "]"


def _same_number(a, b) -> bool:
    """Equal, with NaN equal to NaN and None to None (best_loss may be inf or NaN, best_epoch None)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return False
    return a == b or (a != a and b != b)


def _es_judge_script(j, cid, patience, min_delta, losses):
    label = f"patience={patience}, min_delta={min_delta:g}, losses {_fmt(losses)}"
    why = j.problem(cid)
    stop_name, best_name, restore_name = f"when to stop ({cid})", f"best_loss and best_epoch ({cid})", f"restore ({cid})"
    if why:
        j.fail(stop_name, why)
        return
    returns, _, _, _ = simulate(losses, patience, min_delta)
    got = prop.fact(j, cid, "returns", list)
    kinds = prop.fact(j, cid, "return_kinds", list, [])
    if got is None or not all(isinstance(v, bool) for v in got) or not got or len(got) > len(losses):
        j.fail(stop_name, "no usable record of what step() returned came back")
        return
    if any(k not in ("bool", "bool_") for k in kinds):
        j.fail(stop_name, f"step() returned {', '.join(str(k) for k in kinds)}; it must return True or False (a missing "
               "return statement gives None)")
    elif got == returns:
        j.ok(stop_name)
    else:
        expected_at = f"first return True at call {len(returns) - 1} (0-based)" if returns[-1] else "never return True"
        seen_at = f"returned True at call {len(got) - 1}" if got[-1] else "never returned True"
        hints = [message for switches, message in MISTAKES if simulate(losses, patience, min_delta, **switches)[0] == got]
        if not hints:
            hint = "check the rule: stop once patience calls in a row brought no improvement"
        elif len(hints) == 1:
            hint = hints[0]
        else:
            hint = "one of these: " + "; or ".join(hints)
        j.fail(stop_name, f"with {label}, step() should {expected_at}, but it {seen_at}: {hint}")
    # The attributes after every call the object received (the calls fed depend on its own stopping).
    fed = losses[: len(got)]
    _, _, _, want = simulate(fed, patience, min_delta, stop_at_true=False)
    history = prop.fact(j, cid, "history", list, [])
    if len(history) != len(fed) or not all(isinstance(h, list) and len(h) == 2 for h in history):
        j.fail(best_name, "no usable record of best_loss and best_epoch after each call came back")
    else:
        wrong = [t for t, (h, w) in enumerate(zip(history, want)) if not (_same_number(h[0], w[0]) and _same_number(h[1], w[1]))]
        if not wrong:
            j.ok(best_name)
        else:
            t = wrong[0]
            (got_loss, got_epoch), (want_loss, want_epoch) = history[t], want[t]
            problem = next((v for v in history[t] if isinstance(v, str)), None)
            hint = ""
            if problem:
                hint = f": {problem} (set both attributes in __init__: best_loss = math.inf, best_epoch = None)"
            elif want_epoch is None:
                hint = (": no call has improved yet (inf and NaN never improve), so best_loss is still inf and "
                        "best_epoch None")
            elif isinstance(got_epoch, int) and got_epoch == want_epoch + 1:
                hint = ": best_epoch is 0-based (the first call is epoch 0)"
            elif isinstance(got_loss, float) and got_loss == min((v for v in fed[: t + 1] if v == v), default=None) \
                    and got_loss != want_loss:
                hint = ": best_loss changes only on an improvement (by more than min_delta), not on every lower loss"
            j.fail(best_name, f"with {label}, after call {t} (0-based) expected best_loss = {want_loss:g} and best_epoch "
                              f"= {want_epoch}, got best_loss = {got_loss} and best_epoch = {got_epoch}{hint}")
    _es_judge_restore(j, cid, restore_name, fed, patience, min_delta)


def _es_judge_restore(j, cid, name, fed, patience, min_delta):
    _, _, epoch, _ = simulate(fed, patience, min_delta, stop_at_true=False)
    weights, biases = j.input_array(f"{cid}_w"), j.input_array(f"{cid}_b")
    for key in ("fresh", "same"):
        if prop.fact(j, cid, f"{key}_error", str):
            j.fail(name, f"restore(model) failed: {prop.fact(j, cid, f'{key}_error', str)}"
                   + (" (no call improved, so there is nothing to restore: leave the model as it is)" if epoch is None else ""))
            return
    shape_w, shape_b = weights.shape[1:], biases.shape[1:]
    got = [j.array(cid, k) for k in ("fresh_weight", "fresh_bias", "same_weight", "same_bias")]
    if any(a is None or a.shape != want for a, want in zip(got, (shape_w, shape_b, shape_w, shape_b))):
        j.fail(name, "no usable record of the restored weights came back")
        return
    fresh_w, fresh_b, same_w, same_b = got
    if epoch is None:  # nothing improved: restore leaves both models as they are
        ok = not fresh_w.any() and not fresh_b.any() and np.array_equal(same_w, weights[-1]) and np.array_equal(same_b, biases[-1])
        j.expect(name, ok, "no call improved (inf and NaN never do), so nothing was saved: restore(model) must leave "
                           "the model as it is")
        return
    want_w, want_b = weights[epoch], biases[epoch]
    if all(np.array_equal(a, b) for a, b in ((fresh_w, want_w), (fresh_b, want_b), (same_w, want_w), (same_b, want_b))):
        j.ok(name)
        return
    last_w = weights[-1]
    stopped_w = weights[len(fed) - 1]
    if np.array_equal(fresh_w, last_w) and np.array_equal(same_w, last_w):
        hint = ("restore() loaded the weights the model had at the end, not the best ones: the saved state is a "
                "reference to the live tensors (model.state_dict() changes when the model trains); save a deep copy "
                "(copy.deepcopy(model.state_dict()) or {k: v.clone() for ...})")
    elif not np.any(fresh_w) and np.array_equal(same_w, last_w):
        hint = "restore(model) does not load anything into the model: call model.load_state_dict(saved_state)"
    elif np.array_equal(same_w, stopped_w) and epoch != len(fed) - 1:
        hint = ("restore() loaded the weights of the last step() call: save the state only when the loss improves, "
                "not on every call")
    elif np.array_equal(same_w, want_w) and not np.array_equal(same_b, want_b):
        hint = "the bias was not restored: save and load the whole state_dict"
    else:
        hint = f"the restored weights are not those of best_epoch = {epoch}"
    j.fail(name, hint)


def _es_contract_plan(plan, rng):
    _es_plan(plan, rng, VISIBLE_SCRIPTS)


def _es_more_plan(plan, rng):
    _es_plan(plan, rng, HIDDEN_SCRIPTS, n_random=3)


# ---------------------------------------------------------------------------------------------
# max_norm_
# ---------------------------------------------------------------------------------------------
def _rows_with_norms(rng, norms, cols, dtype=np.float32):
    rows = rng.normal(size=(len(norms), cols))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows * np.asarray(norms)[:, None]).astype(dtype)


def _matrix(rng, c, n_rows, cols, zero_row=False, dtype=np.float32):
    """Rows inside the ball (norm 0.2c to 0.9c) and outside it (1.1c to 3c), shuffled; never near the boundary."""
    n_in = n_rows // 2
    factors = np.concatenate([rng.uniform(0.2, 0.9, n_in), rng.uniform(1.1, 3.0, n_rows - n_in)])
    rng.shuffle(factors)
    w = _rows_with_norms(rng, c * factors, cols, dtype)
    if zero_row:
        w[int(rng.integers(n_rows))] = 0.0
    return w


def expected_max_norm(w: np.ndarray, c: float) -> np.ndarray:
    w = w.astype(np.float64)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    scale = np.where(norms > c, c / np.where(norms > 0, norms, 1.0), 1.0)
    return w * scale


def _max_norm_mistake(w, c, got) -> str:
    w64 = w.astype(np.float64)
    rows = np.linalg.norm(w64, axis=1, keepdims=True)
    cols = np.linalg.norm(w64, axis=0, keepdims=True)
    total = np.linalg.norm(w64)
    safe = lambda n: np.where(n > 0, n, 1.0)  # noqa: E731
    candidates = [
        (w64 * np.where(cols > c, c / safe(cols), 1.0),
         "columns were renormalised instead of rows: nn.Linear's weight is (out_features, in_features), so a "
         "unit's incoming weights are a row; take the norm over dim=1"),
        (w64 * c / safe(rows), "every row was rescaled to norm max_norm, also rows inside the ball: only rows whose "
                               "norm exceeds max_norm change"),
        (w64 * (c / total if total > c else 1.0), "the whole matrix was rescaled by its overall norm: constrain each "
                                                  "row's norm separately (norm over dim=1, keepdim=True)"),
        (w64 * np.where(rows > c, 1.0 / safe(rows), 1.0), "rows that exceed max_norm were scaled to norm 1, not to "
                                                          "norm max_norm"),
        (w64 * np.where(rows > c, c / safe(rows) ** 2, 1.0), "rows were divided by their squared norm: scale by "
                                                             "max_norm / norm"),
        (w64 * np.where(rows**2 > c, c / safe(rows), 1.0), "the squared norm was compared with max_norm: compare the "
                                                           "norm itself"),
        (np.clip(w64, -c, c), "entries were clipped one by one: max-norm limits the L2 norm of each row"),
    ]
    for candidate, message in candidates:
        if np.allclose(got, candidate, rtol=1e-5, atol=1e-6):
            return message
    return "each row whose L2 norm exceeds max_norm must be scaled to norm max_norm, other rows left as they are"


def _judge_max_norm_call(j, name, cid, w_name, c, dtype="torch.float32") -> bool:
    why = j.problem(cid)
    if why:
        j.fail(name, why)
        return False
    err = prop.fact(j, cid, "call_error", str)
    if err:
        hint = ""
        if "in-place" in err or "leaf Variable" in err:
            hint = (": an in-place change of a parameter that requires grad must happen inside "
                    "`with torch.no_grad():`")
        j.fail(name, f"max_norm_(layer.weight, {c:g}) raised {err}{hint}")
        return False
    w = j.input_array(w_name)
    after = j.array(cid, "after")
    out = j.array(cid, "out")
    if after is None or after.shape != w.shape or after.dtype.kind != "f":
        j.fail(name, "no usable record of the weight after the call came back")
        return False
    if out is not None and out.shape != w.shape:
        out = None
    want = expected_max_norm(w, c)
    # float32 rounding, or the 1e-7 that torch.renorm adds to each norm; nothing tighter is promised.
    rtol, atol = 1e-5, 1e-6
    if np.array_equal(after, w) and not np.allclose(want, w):
        if out is not None and np.allclose(out, want, rtol=rtol, atol=atol):
            j.fail(name, "the weight was left unchanged and a new tensor returned: max_norm_ works in place "
                         "(weight.mul_(scale) under torch.no_grad(), or weight.copy_(...)) and returns weight itself")
        else:
            j.fail(name, "the weight was left unchanged: rows whose norm exceeds max_norm must be rescaled in place")
        return False
    if np.isnan(after).any():
        j.fail(name, "the weight contains NaN after the call: a zero row has norm 0, so dividing by the norm gives "
                     "0/0; scale by min(1, max_norm / norm) computed safely (e.g. clamp the norm from below)")
        return False
    if not np.allclose(after, want, rtol=rtol, atol=atol):
        j.fail(name, _max_norm_mistake(w, c, after))
        return False
    problems = []
    if not prop.fact(j, cid, "same_object", bool, False):
        problems.append("it must return the same tensor object it was given (return weight)")
    if prop.fact(j, cid, "out_dtype", str) not in (None, dtype):
        problems.append(f"expected dtype {dtype}, got {prop.fact(j, cid, 'out_dtype', str)}")
    if problems:
        j.fail(name, "; ".join(problems))
        return False
    j.ok(name)
    return True


def _max_norm_contract_plan(plan, rng):
    c1, c2 = float(rng.uniform(1.5, 3.0)), float(rng.uniform(0.3, 0.8))
    plan.info.update(c1=c1, c2=c2)
    plan.inputs["w1"] = _matrix(rng, c1, 7, 5)
    plan.inputs["w2"] = _matrix(rng, c2, 6, 9)
    plan.inputs["w3"] = _matrix(rng, c1, 8, 3)
    plan.call("plain1", tensor("w1"), c1, scenario="autograde.checks.overfitting:max_norm_plain")
    plan.call("plain2", tensor("w2"), c2, scenario="autograde.checks.overfitting:max_norm_plain")
    plan.call("param", tensor("w3"), c1, scenario="autograde.checks.overfitting:max_norm_parameter")
    plan.call("zero", tensor("w1"), 0.0)
    plan.call("neg", tensor("w1"), -1.0)


def _max_norm_contract_judge(j):
    c1, c2 = j.plan.info["c1"], j.plan.info["c2"]
    _judge_max_norm_call(j, f"rows renormalised, max_norm={c1:.3g}", "plain1", "w1", c1)
    _judge_max_norm_call(j, f"rows renormalised, max_norm={c2:.3g}", "plain2", "w2", c2)
    if _judge_max_norm_call(j, "in place on nn.Linear's weight", "param", "w3", c1):
        j.expect("parameter still trains", prop.fact(j, "param", "still_parameter", bool, False)
                 and prop.fact(j, "param", "requires_grad", bool, False) and prop.fact(j, "param", "gets_grad", bool, False),
                 "after max_norm_ the layer's weight must still be the same nn.Parameter, require grad and receive "
                 "gradients: change its values in place, do not replace it")
    for cid, c in (("zero", 0.0), ("neg", -1.0)):
        if not j.raised(cid, "ValueError"):
            j.fail("ValueError for max_norm <= 0", f"expected ValueError for max_norm = {c:g}; saw {prop.raised_what(j, cid)}")
            break
    else:
        j.ok("ValueError for max_norm <= 0")
    prop.cuda_note(j)


def _max_norm_safety_plan(plan, rng):
    c = float(rng.uniform(1.2, 2.5))
    plan.info["c"] = c
    plan.inputs["w64"] = _matrix(rng, c, 6, 4, dtype=np.float64)
    plan.inputs["wz"] = _matrix(rng, c, 6, 5, zero_row=True)
    plan.inputs["wbig"] = _matrix(rng, c, 300, 200)
    plan.inputs["winside"] = _rows_with_norms(rng, c * rng.uniform(0.1, 0.95, 5), 4)
    plan.inputs["wone"] = _rows_with_norms(rng, [2.5 * c], 6)
    plan.call("f64", tensor("w64", "float64"), c, scenario="autograde.checks.overfitting:max_norm_plain")
    plan.call("f64param", tensor("w64", "float64"), c, scenario="autograde.checks.overfitting:max_norm_parameter")
    plan.call("zero_row", tensor("wz"), c, scenario="autograde.checks.overfitting:max_norm_plain")
    plan.call("big", tensor("wbig"), c, scenario="autograde.checks.overfitting:max_norm_plain")
    plan.call("inside", tensor("winside"), c, scenario="autograde.checks.overfitting:max_norm_plain")
    plan.call("one_row", tensor("wone"), c, scenario="autograde.checks.overfitting:max_norm_plain")


def _max_norm_safety_judge(j):
    c = j.plan.info["c"]
    _judge_max_norm_call(j, "float64 preserved", "f64", "w64", c, dtype="torch.float64")
    _judge_max_norm_call(j, "float64 parameter", "f64param", "w64", c, dtype="torch.float64")
    _judge_max_norm_call(j, "zero row stays zero", "zero_row", "wz", c)
    _judge_max_norm_call(j, "300 x 200 weight", "big", "wbig", c)
    _judge_max_norm_call(j, "rows inside the ball unchanged", "inside", "winside", c)
    _judge_max_norm_call(j, "a single row", "one_row", "wone", c)
    if not j.problem("big") and j.array("big", "after") is not None:
        j.expect("device", prop.fact(j, "big", "out_device", str) in (None, j.plan.device.split(":")[0]),
                 f"expected the result on {j.plan.device}")
    prop.cuda_note(j)


# ---------------------------------------------------------------------------------------------
# Practice questions (the same questions, with explanations, are in chapter 1)
# ---------------------------------------------------------------------------------------------
ANSWERS = {
    "answer_q1": (["b"], "Keras' l2(lam) adds lam * sum(w**2), whose gradient is 2 * lam * w; SGD's weight_decay=wd adds "
                         "wd * w, so wd = 2 * lam"),
    "answer_q2": (["c"], "Adam's weight_decay adds wd * w to the gradient before the adaptive scaling (an L2 term in "
                         "the loss); decoupled weight decay is AdamW"),
    "answer_q3": ([3, "3"], "trace the count of calls without improvement: the tie at call 2 is not an improvement"),
    "answer_q4": (["a"], "a row with norm 5 > 2 is scaled by 2 / 5, keeping its direction"),
    "answer_q5": (["b"], "Keras' EarlyStopping keeps the last weights unless restore_best_weights=True"),
}


CHECKS = [
    Check("l2_penalty.contract", "l2_penalty", _l2_contract_plan, _l2_contract_judge,
          "value on several parameter lists, a 0-dim tensor, a generator consumed once, weight_decay = 0, ValueError"),
    Check("l2_penalty.safety", "l2_penalty", _l2_safety_plan, _l2_safety_judge,
          "gradient weight_decay * w, parameters unchanged, float64, model.parameters() with biases"),
    Check("EarlyStopping.contract", "EarlyStopping", _es_contract_plan, _es_judge,
          "when step() returns True, best_loss, best_epoch, restore() of a deep copy (scripted losses)"),
    Check("EarlyStopping.more", "EarlyStopping", _es_more_plan, _es_judge,
          "min_delta and its boundary, patience 1, a run that never stops, random scripted losses"),
    Check("max_norm_.contract", "max_norm_", _max_norm_contract_plan, _max_norm_contract_judge,
          "rows renormalised in place, others unchanged, returns weight, works on nn.Linear's weight, ValueError"),
    Check("max_norm_.safety", "max_norm_", _max_norm_safety_plan, _max_norm_safety_judge,
          "float64, a zero row, a large weight, rows inside the ball, a single row"),
] + [
    prop.answer_check(f"{variable}.overfitting", variable, accepted, why)
    for variable, (accepted, why) in ANSWERS.items()
]
