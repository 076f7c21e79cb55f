"""Checks for assignment 04_inverted_dropout: ``dropout_inverted``, ``Dropout`` and ``scale_for_inference``.

p is the drop probability, q = 1 - p the keep probability. Statistical properties are binomial tests or exact
conditional tests of independence (``properties.agreement_interval``), 1e-7 each, at most ten per check.

Contract clause (the task text above each graded function) -> check.property that exercises it.

``dropout_inverted(x, p, training=True, generator=None)``
- training: x * m / q, m a 0/1 mask of x's shape, each entry dropped with probability p -> dropout_inverted.
  contract."shape", "drop rate at p=..." (p = 0.1, 0.3, 0.8)
- independently -> dropout_inverted.safety."rows independent at p=...", "columns independent at p=..."
- survivors exactly x / q (relative error 1e-5), dropped ones 0 -> dropout_inverted.contract."kept values are
  x / q at p=..."
- p = 0 returns the values of x -> dropout_inverted.contract."p=0 is the identity"
- p = 1 returns zeros, never NaN -> dropout_inverted.contract."p=1 gives zeros, not NaN"
- evaluation returns x unchanged, whatever p -> dropout_inverted.contract."evaluation returns x", "evaluation
  returns x at p=1"
- x's dtype and device -> dropout_inverted.contract."dtype", "device" (CUDA only: "cuda" skipped with a note on
  a CPU-only machine)
- float64 in, float64 out, survivors x / q to 1e-12 -> dropout_inverted.safety."float64 preserved"
- x never modified -> dropout_inverted.safety."input unchanged"
- gradient m / q * upstream in training, upstream at evaluation -> dropout_inverted.safety."gradient in training
  is mask / q * upstream", "gradient at evaluation is the upstream gradient"
- at p = 1 the output need not be connected to x; if it is, its gradient is zero, never NaN ->
  dropout_inverted.safety."gradient at p=1 is zero or absent"
- random numbers from generator when given (seeded alike, the same mask) -> dropout_inverted.safety."generator
  honoured", "generator seed matters"
- otherwise from PyTorch's global random state -> dropout_inverted.safety."global random state without a
  generator"
- a new mask on every call -> dropout_inverted.safety."fresh mask each call"
- ValueError outside [0, 1], in training and in evaluation -> dropout_inverted.contract."ValueError outside
  [0, 1]"

``Dropout(p)`` (an nn.Module)
- ValueError at construction for p outside [0, 1] -> Dropout.contract."ValueError at construction"
- keeps p as a setting; no parameters -> Dropout.contract."no parameters"; the drop rate follows the p given ->
  Dropout.contract."drop rate at p=..."
- forward follows self.training: after train() inverted dropout -> Dropout.contract."forward returns a tensor",
  "kept values are x / q at p=...", "drop rate at p=..."; a fresh mask every forward -> Dropout.masks."fresh mask
  each forward"; independent for every entry -> Dropout.masks."rows independent at p=...", "columns independent
  at p=..."; zeros at p = 1 -> Dropout.contract."p=1 gives zeros in training, x at evaluation"
- after eval() it returns x -> Dropout.contract."eval() returns x", "p=1 gives zeros in training, x at evaluation"
- also when switched on a model containing the module -> Dropout.contract."eval() of a parent model returns x";
  Dropout.masks."train() after eval() drops again"
- and when switched back and forth on the module itself (do not override train()/eval()) -> Dropout.masks."train()
  after eval() on the module itself drops again"
- x's shape, dtype and device -> Dropout.contract."shape", "dtype", "device" (CUDA only)
- x not modified -> Dropout.masks."input unchanged"
- gradients flow back, m / q * upstream; at p = 1 zero or none, never NaN -> Dropout.masks."gradient is mask / q *
  upstream", "gradient at p=1 is zero or absent"

``scale_for_inference(model, p)`` (properties named "<requirement> (<case>)", one per conversion)
- every nn.Linear's weight except the first multiplied by q (relative error 1e-5) -> "later weights scaled by q
  (...)", "outputs match (...)" in scale_for_inference.contract (3 layers, p = 0.3) and .more (4 layers at p = 0.8,
  p = 0, p = 1, a single nn.Linear, float64)
- the first layer's weight and every bias as trained -> "first layer unchanged (...)", "biases unchanged (...)"
- dtype and device kept -> "dtype and device kept (...)" (float64 in .more)
- an nn.Sequential with the same layers in order, each nn.ReLU's inplace flag, every module's mode ->
  "same container, layers, ReLU flags and mode (...)" (an eval-mode model with an in-place ReLU in .contract, a
  train-mode one in .more)
- a new model; the one passed in not modified -> "returns a model (...)", "original model unchanged (...)"
- p = 0 an unchanged copy, p = 1 zero weights after the first layer -> scale_for_inference.more, cases "p=0", "p=1"
- ValueError outside [0, 1] -> scale_for_inference.more."ValueError outside [0, 1]"

Practice questions -> answer_qN.inverted_dropout."answer" (one letter, any case and spacing).
"""

from __future__ import annotations

import numpy as np

from ..probe import generator, tensor, scenario
from . import Check
from . import properties as prop
from .properties import judge_randomness

RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 a swapped keep/drop probability would be invisible
BIG = (400, 1000)  # 400,000 entries: a drop-rate interval of about +-0.35 percentage points at p = 0.3
WIDE = (256, 1024)  # independence tests: a shared or repeated mask agrees on 100% instead of p^2 + q^2
RTOL = 1e-5  # x * m / q, x * (m / q), x * (1 / q) * m round differently in the last bit or two


def _kept_values(j, name, out, x, p) -> None:
    """Survivors must equal x / q; name the usual wrong factors."""
    kept = out != 0
    q = 1 - p
    got, want = out[kept], x[kept]
    if np.allclose(got, want / q, rtol=RTOL, atol=0):
        j.ok(name)
    elif np.array_equal(got, want):
        j.fail(name, f"kept values equal x: that is classic dropout's training output; inverted dropout divides the survivors by q = 1 - p = {q:.1f}")
    elif np.allclose(got, want * q, rtol=RTOL):
        j.fail(name, f"kept values equal x * (1 - p): multiply by 1 / q, not by q (expected x / {q:.1f})")
    elif np.allclose(got, want / p, rtol=RTOL):
        j.fail(name, f"kept values equal x / p: divide by the keep probability q = 1 - p = {q:.1f}, not by the drop probability p")
    elif np.allclose(got, want * p, rtol=RTOL):
        j.fail(name, f"kept values equal x * p: inverted dropout divides the survivors by q = 1 - p = {q:.1f}")
    else:
        j.fail(name, f"entries that survive must equal x / (1 - p) = x / {q:.1f} (training output x * m / q with m in {{0, 1}})")


def _eval_identity(j, name, ev, x, p, where="with training=False") -> None:
    if np.array_equal(ev, x):
        j.ok(name)
    elif (ev == 0).any() and not (x == 0).any():
        j.fail(
            name,
            f"{where} {prop.pct(float((ev == 0).mean()))} of entries were zeroed: inverted dropout must return x "
            "unchanged at evaluation (no mask)",
        )
    elif np.allclose(ev, x * (1 - p), rtol=RTOL):
        j.fail(name, f"{where} the output is x * (1 - p): that is classic dropout's evaluation rule; inverted dropout already scaled in training, so evaluation returns x")
    elif np.allclose(ev, x / (1 - p), rtol=RTOL):
        j.fail(name, f"{where} the output is x / (1 - p): the 1 / q scaling belongs to training only; evaluation returns x")
    else:
        j.fail(name, f"{where} the output must equal x exactly (inverted dropout is the identity at evaluation)")


def _zeros_not_nan(j, name, out) -> None:
    if np.isnan(out).any():
        j.fail(name, "at p = 1 the output contains NaN (x * m / q with q = 0 gives 0 / 0): return zeros when p = 1")
    else:
        j.expect(name, (out == 0).all(), "at p = 1 everything is dropped: the training output must be all zeros")


# ---------------------------------------------------------------------------------------------
# dropout_inverted
# ---------------------------------------------------------------------------------------------
F32 = "torch.float32"


def _inv_contract_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, BIG)
    plan.inputs["x_small"] = prop.nonzero_input(rng, (200, 300))
    for p in RATES:
        plan.call(f"t{p}", tensor("x"), p)
    plan.call("e0.3", tensor("x"), 0.3, training=False)
    plan.call("t0", tensor("x_small"), 0.0)
    plan.call("t1", tensor("x_small"), 1.0)
    plan.call("e1", tensor("x_small"), 1.0, training=False)
    plan.call("neg", tensor("x_small"), -0.1)
    plan.call("big", tensor("x_small"), 1.2)
    plan.call("neg_eval", tensor("x_small"), -0.1, training=False)


def _inv_contract_judge(j):
    x, xs = j.input_array("x"), j.input_array("x_small")
    first = prop.tensor_out(j, "returns a tensor", f"t{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    j.expect("shape", first.shape == x.shape, f"expected shape {x.shape}, got {first.shape}")
    prop.dtype_device(j, f"t{RATES[1]}", F32, j.plan.device)
    prop.cuda_note(j)
    for p in RATES:
        out = prop.input_like(j, f"drop rate at p={p}", f"t{p}", "x")
        if out is None:
            continue
        _kept_values(j, f"kept values are x / q at p={p}", out, x, p)
        prop.drop_rate(j, f"drop rate at p={p}", out == 0, p)
    ev = prop.input_like(j, "evaluation returns x", "e0.3", "x", "with training=False the output")
    if ev is not None:
        _eval_identity(j, "evaluation returns x", ev, x, 0.3)
    t0 = prop.input_like(j, "p=0 is the identity", "t0", "x_small", "at p = 0 the output")
    if t0 is not None:
        j.expect("p=0 is the identity", np.allclose(t0, xs, rtol=1e-6, atol=0),
                 "at p = 0 nothing is dropped and q = 1: the training output must equal x")
    t1 = prop.input_like(j, "p=1 gives zeros, not NaN", "t1", "x_small", "at p = 1 the output")
    if t1 is not None:
        _zeros_not_nan(j, "p=1 gives zeros, not NaN", t1)
    e1 = prop.input_like(j, "evaluation returns x at p=1", "e1", "x_small", "with training=False and p = 1 the output")
    if e1 is not None:
        _eval_identity(j, "evaluation returns x at p=1", e1, xs, 1.0, "with training=False and p = 1")
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big", "neg_eval"], "ValueError", [-0.1, 1.2, -0.1])


def _inv_safety_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["x"] = prop.nonzero_input(rng, WIDE)
    plan.inputs["g"] = rng.normal(size=WIDE).astype(np.float32)
    plan.inputs["x64"] = prop.nonzero_input(rng, (100, 100)).astype(np.float64)
    plan.call("inplace", tensor("x"), 0.3)
    plan.call("grad", tensor("x", requires_grad=True), 0.3, backward="g")
    plan.call("grad_eval", tensor("x", requires_grad=True), 0.3, training=False, backward="g")
    plan.call("grad_p1", tensor("x", requires_grad=True), 1.0, backward="g")
    plan.call("f64", tensor("x64", "float64"), 0.3)
    plan.call("a", tensor("x"), 0.3)
    plan.call("b", tensor("x"), 0.3)
    plan.call("c", tensor("x"), 0.8)
    plan.call("g1", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, generator=generator(seed + 1))
    prop.global_seed(plan, ("s1", "s2"), tensor("x"), 0.3)


def judge_float64(j, cid, input_name, p, name="float64 preserved"):
    """A float64 input gives a float64 output whose survivors are x / q to float64 precision."""
    x64 = j.input_array(input_name)
    out64 = prop.tensor_out(j, name, cid, x64.shape)
    if out64 is None:
        return
    got = prop.out_dtype(j, cid)
    kept = out64 != 0
    j.expect(
        name,
        got == "torch.float64" and bool(np.allclose(out64[kept], x64[kept] / (1 - p), rtol=1e-12, atol=0)),
        f"a float64 input must give a float64 output with kept values x / q to float64 precision; got "
        f"{got} (is the mask made as float32 and the product cast, or q rounded to float32?)",
    )


def _inv_safety_judge(j):
    prop.unchanged_input(j, "inplace", "x")
    prop.judge_gradient(j, "grad", lambda out, g: g * (out != 0) / np.float32(0.7), "gradient in training is mask / q * upstream")
    prop.judge_gradient(j, "grad_eval", lambda out, g: g, "gradient at evaluation is the upstream gradient")
    prop.judge_gradient_p1(j, "grad_p1")
    judge_float64(j, "f64", "x64", 0.3)
    judge_randomness(j, ("a", "b"), "c", ("g1", "g2", "g3"), shape=WIDE, global_ids=("s1", "s2"))


# ---------------------------------------------------------------------------------------------
# Dropout (nn.Module)
# ---------------------------------------------------------------------------------------------
@scenario("grad", "out[0-9]*")
def module_scenario(cls, x, p, modes=("train",), wrap=False, grad=None):
    """Construct ``cls(p)``, switch it through ``modes`` ('train' or 'eval'), and record one output per mode.

    With ``wrap`` the mode is switched on an ``nn.Sequential`` holding the module (as a model would);
    with ``grad`` (an upstream gradient) the first output is back-propagated and x's gradient recorded.
    """
    import torch
    from torch import nn

    module = cls(p)
    facts = {
        "is_module": isinstance(module, nn.Module),
        "parameters": [name for name, _ in module.named_parameters()] if isinstance(module, nn.Module) else [],
    }
    if not facts["is_module"]:
        return facts
    module = module.to(x.device)
    outer = nn.Sequential(module) if wrap else module
    before = x.detach().clone()
    for i, mode in enumerate(modes):
        outer.train() if mode == "train" else outer.eval()
        facts[f"training{i}"] = bool(module.training)
        out = module(x)
        if not isinstance(out, torch.Tensor):
            facts[f"type{i}"] = type(out).__name__
            continue
        if i == 0 and grad is not None:
            try:
                out.backward(grad.to(out.dtype))
            except RuntimeError as exc:  # a detached output: an answer to judge, not a crash
                facts["backward_error"] = str(exc)[:300]
            if x.grad is not None:
                facts["grad"] = x.grad
        facts[f"out{i}"] = out
    facts["input_unchanged"] = bool(torch.equal(x.detach(), before))
    return facts


def _module_out(j, name, cid, i=0, input_name="x"):
    """Output ``i`` of a module scenario (x's shape and dtype), or a failure of ``name`` with the reason."""
    why = j.problem(cid)
    if why:
        j.fail(name, why.replace(" raised ", " (construction or forward) raised "))
        return None
    if not prop.fact(j, cid, "is_module", bool, False):
        j.fail(name, f"{j.plan.target}(p) must be an nn.Module: class {j.plan.target}(nn.Module) with super().__init__() in __init__")
        return None
    kind = prop.fact(j, cid, f"type{i}", str)
    if kind:
        j.fail(name, f"forward returned a {kind}, expected a torch.Tensor")
        return None
    return _module_array(j, name, cid, f"out{i}", input_name)


def _module_array(j, name, cid, key, input_name):
    x = j.input_array(input_name)
    return prop.tensor_out(j, name, cid, x.shape, f"torch.{x.dtype.name}", key=key, what="forward's output")


def _mod_contract_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, BIG)
    plan.inputs["x_small"] = prop.nonzero_input(rng, (200, 300))
    sc = "autograde.checks.inverted_dropout:module_scenario"
    for p in RATES:
        plan.call(f"t{p}", tensor("x"), p, modes=["train"], scenario=sc)
    plan.call("eval", tensor("x_small"), 0.3, modes=["eval"], scenario=sc)
    plan.call("wrapped_eval", tensor("x_small"), 0.3, modes=["eval"], wrap=True, scenario=sc)
    plan.call("p1", tensor("x_small"), 1.0, modes=["train", "eval"], scenario=sc)
    plan.call("neg", tensor("x_small"), -0.1, modes=[], scenario=sc)
    plan.call("big", tensor("x_small"), 1.5, modes=[], scenario=sc)


def _construction_error(j, cid, p) -> str | None:
    """None when constructing with ``p`` raised ValueError, else what happened instead."""
    if j.raised(cid, "ValueError"):
        return None
    return f"{j.plan.target}({p}): " + (prop.raised_what(j, cid) if j.record(cid).get("status") == "raised"
                                         else "constructed without complaint")


def _mod_contract_judge(j):
    xs = j.input_array("x_small")
    cid = f"t{RATES[1]}"
    first = _module_out(j, "forward returns a tensor", cid)
    if first is None:
        return
    j.ok("forward returns a tensor")
    j.ok("shape")
    dtype, device = prop.out_dtype(j, cid, "out0"), prop.out_device(j, cid, "out0")
    j.expect("dtype", dtype == F32, f"expected dtype {F32}, got {dtype}")
    j.expect("device", device == j.plan.device.split(":")[0],
             f"expected the output on {j.plan.device}, got {device} (make the mask on x.device)")
    prop.cuda_note(j)
    params = prop.fact(j, cid, "parameters", list, [])
    j.expect("no parameters", not params,
             f"the module has parameters {params}: p is a fixed setting, store it as a plain attribute (self.p = p), "
             "not an nn.Parameter, or an optimizer would train it")
    x = j.input_array("x")
    for p in RATES:
        out = _module_out(j, f"drop rate at p={p}", f"t{p}")
        if out is None:
            continue
        _kept_values(j, f"kept values are x / q at p={p}", out, x, p)
        prop.drop_rate(j, f"drop rate at p={p}", out == 0, p)
    for cid, name, where in (("eval", "eval() returns x", "after .eval()"),
                             ("wrapped_eval", "eval() of a parent model returns x", "after .eval() on an nn.Sequential holding the module")):
        ev = _module_out(j, name, cid, input_name="x_small")
        if ev is None:
            continue
        if (ev == 0).any():
            j.fail(name, f"{where} {prop.pct(float((ev == 0).mean()))} of entries were zeroed: forward must follow "
                         "self.training (F.dropout(x, p) defaults to training=True: pass training=self.training)")
        else:
            _eval_identity(j, name, ev, xs, 0.3, where)
    name = "p=1 gives zeros in training, x at evaluation"
    t1 = _module_out(j, name, "p1", 0, input_name="x_small")
    e1 = _module_out(j, name, "p1", 1, input_name="x_small") if t1 is not None else None
    if t1 is not None and e1 is not None:
        if np.isnan(t1).any() or not (t1 == 0).all():
            _zeros_not_nan(j, name, t1)
        else:
            j.expect(name, np.array_equal(e1, xs), "with p = 1 in eval mode the module must still return x")
    missing = [m for m in (_construction_error(j, "neg", -0.1), _construction_error(j, "big", 1.5)) if m]
    j.expect("ValueError at construction", not missing,
             "expected ValueError when constructing with p outside [0, 1] (check p in __init__); saw " + ", ".join(missing))


def _mod_masks_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, WIDE)
    plan.inputs["g"] = rng.normal(size=WIDE).astype(np.float32)
    sc = "autograde.checks.inverted_dropout:module_scenario"
    plan.call("twice", tensor("x"), 0.3, modes=["train", "train"], scenario=sc)
    plan.call("wide", tensor("x"), 0.8, modes=["train"], scenario=sc)
    plan.call("cycle", tensor("x"), 0.3, modes=["eval", "train"], wrap=True, scenario=sc)
    plan.call("cycle_direct", tensor("x"), 0.3, modes=["eval", "train"], scenario=sc)
    plan.call("inplace", tensor("x"), 0.3, modes=["train"], scenario=sc)
    plan.call("grad", tensor("x", requires_grad=True), 0.3, modes=["train"], grad=tensor("g"), scenario=sc)
    plan.call("grad_p1", tensor("x", requires_grad=True), 1.0, modes=["train"], grad=tensor("g"), scenario=sc)


def _mod_masks_judge(j):
    a = _module_out(j, "fresh mask each forward", "twice", 0)
    b = _module_out(j, "fresh mask each forward", "twice", 1)
    if a is not None and b is not None:
        prop.independent(
            j, "fresh mask each forward", a == 0, b == 0, 0.3, "two forward passes' masks",
            "the same mask comes back on every forward pass (is the mask made in __init__ or cached, or a seed set in forward?)",
        )
    for p, cid in ((0.3, "twice"), (0.8, "wide")):
        out = _module_out(j, f"rows independent at p={p}", cid)
        if out is None:
            continue
        m = out == 0
        prop.independent(j, f"rows independent at p={p}", m[0::2], m[1::2], p, "neighbouring rows",
                         "one mask seems to be shared by every example of the batch (draw the mask with x's full shape)")
        prop.independent(j, f"columns independent at p={p}", m[:, 0::2], m[:, 1::2], p, "neighbouring columns",
                         "whole rows are kept or dropped together (draw one value per entry, not per example)")
    # The mode switched eval() then train(), through a parent model ("cycle") and on the module itself
    # ("cycle_direct"): a mode kept in an attribute of one's own, or an overridden eval()/train(), must not stick.
    x = j.input_array("x")
    for cid, name, where in (("cycle", "train() after eval() drops again", "a parent model's"),
                             ("cycle_direct", "train() after eval() on the module itself drops again", "the module's")):
        between = _module_out(j, name, cid, 0)
        again = _module_out(j, name, cid, 1) if between is not None else None
        if again is None:
            continue
        if not np.array_equal(between, x):  # the eval() mistake itself is Dropout.contract's to charge
            j.skip(name, f"not judged: after {where} eval() the output was not x (see Dropout.contract)")
        elif not (again == 0).any():
            j.fail(name, f"after {where} eval() and then train() nothing was dropped: the module must drop again "
                         "once switched back to training; follow self.training only, and do not override eval() or "
                         "train() to keep a mode of your own")
        else:
            prop.drop_rate(j, name, again == 0, 0.3)
    if _module_out(j, "input unchanged", "inplace") is not None:
        j.expect("input unchanged", prop.fact(j, "inplace", "input_unchanged", bool, False),
                 "forward modified its input in place: return a new tensor (x * mask / q), never x.mul_(...) or x[...] = 0")
    name = "gradient is mask / q * upstream"
    out = _module_out(j, name, "grad")
    if out is not None:
        grad = _module_array(j, name, "grad", "grad", "x") if j.array("grad", "grad") is not None else None
        error = prop.fact(j, "grad", "backward_error", str)
        if error:
            j.fail(name, f"backward failed: {error} (is the output detached, or built with numpy?)")
        elif grad is None:
            if j.array("grad", "grad") is None:
                j.fail(name, "x received no gradient: keep the computation in torch (no .detach(), .numpy() or torch.no_grad())")
        else:
            expected = j.input_array("g") * (out != 0) / np.float32(0.7)
            j.expect(name, np.allclose(grad, expected, rtol=1e-5, atol=1e-6),
                     "the gradient with respect to x should be the upstream gradient masked and divided by q, like the forward pass")
    name = "gradient at p=1 is zero or absent"
    if _module_out(j, name, "grad_p1") is not None:
        grad = j.array("grad_p1", "grad")
        if grad is None:
            j.ok(name)  # not connected to x at p = 1: allowed
        elif grad.shape != j.input_array("x").shape:
            j.fail(name, f"x's gradient has shape {grad.shape}, expected {j.input_array('x').shape}")
        elif np.isnan(grad).any():
            j.fail(name, "at p = 1 the gradient with respect to x contains NaN (torch.where(keep, x / q, 0) with q = 0 "
                         "back-propagates 0 * inf): return zeros at p = 1 before dividing by q")
        else:
            j.expect(name, not grad.any(), "at p = 1 everything is dropped, so the gradient with respect to x must be zero")


# ---------------------------------------------------------------------------------------------
# scale_for_inference
# ---------------------------------------------------------------------------------------------
@scenario("orig_w[0-9]*", "orig_b[0-9]*", "w[0-9]*", "b[0-9]*", "out")
def scale_scenario(fn, params, x, p, dtype="float32", mode="train", inplace=None):
    """Build ``Sequential(Linear, ReLU, ..., Linear)`` from ``params`` (W0, b0, W1, b1, ...) in ``mode``
    ('train' or 'eval'), with ``nn.ReLU(inplace=...)`` flags from ``inplace``; call ``fn(model, p)``.

    Records the returned model's container, layers, ReLU flags, mode, Linear weights and biases, its output
    on x, the original model's weights after the call, and whether the same object came back.
    """
    import torch
    from torch import nn

    dt = getattr(torch, dtype)
    layers = []
    for k in range(0, len(params), 2):
        w, b = params[k], params[k + 1]
        lin = nn.Linear(w.shape[1], w.shape[0]).to(device=x.device, dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers += [lin, nn.ReLU(inplace=bool(inplace[k // 2]) if inplace and k // 2 < len(inplace) else False)]
    model = nn.Sequential(*layers[:-1]).train(mode == "train")
    result = fn(model, p)
    facts = {"is_module": isinstance(result, nn.Module), "same_object": result is model}
    for k, lin in enumerate(m for m in model.modules() if isinstance(m, nn.Linear)):
        facts[f"orig_w{k}"], facts[f"orig_b{k}"] = lin.weight.detach(), lin.bias.detach()
    if not facts["is_module"]:
        facts["type"] = type(result).__name__
        return facts
    facts["container"] = type(result).__module__ + "." + type(result).__qualname__
    facts["layers"] = [type(m).__name__ for m in result.children()]
    facts["relu_inplace"] = [bool(getattr(m, "inplace", False)) for m in result.children() if isinstance(m, nn.ReLU)]
    facts["modes"] = sorted({bool(m.training) for m in result.modules()})
    linears = [m for m in result.modules() if isinstance(m, nn.Linear)]
    facts["n_linear"] = len(linears)
    for k, lin in enumerate(linears):
        facts[f"w{k}"], facts[f"b{k}"] = lin.weight.detach(), lin.bias.detach() if lin.bias is not None else torch.zeros(0)
    try:
        with torch.no_grad():
            out = result(x.to(dt))
    except Exception as exc:  # e.g. layers rebuilt in float32 for a float64 model: judged, not a crash
        facts["forward_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return facts
    if not isinstance(out, torch.Tensor):
        facts["forward_error"] = f"the returned model's forward gave a {type(out).__name__}, not a tensor"
        return facts
    facts["out"] = out
    facts["out_dtype"] = str(out.dtype)
    facts["out_device"] = out.device.type
    return facts


def _random_net(plan, rng, name, sizes):
    """Weights for a Linear stack of ``sizes`` stored as plan inputs; returns their tensor encodings."""
    enc = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        plan.inputs[f"{name}_W{k}"] = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        plan.inputs[f"{name}_b{k}"] = rng.uniform(0.1, 0.5, size=n_out).astype(np.float32)  # nonzero: a scaled bias shows
        enc += [tensor(f"{name}_W{k}"), tensor(f"{name}_b{k}")]
    return enc


def _trusted(j, name, p):
    """The expected weights and output of the converted model, from the plan's arrays."""
    q = 1.0 - p
    n = sum(1 for k in j.plan.inputs if k.startswith(f"{name}_W"))
    ws = [j.input_array(f"{name}_W{k}").astype(np.float64) * (1.0 if k == 0 else q) for k in range(n)]
    bs = [j.input_array(f"{name}_b{k}").astype(np.float64) for k in range(n)]
    h = j.input_array("x").astype(np.float64)
    for k in range(n):
        h = h @ ws[k].T + bs[k]
        if k < n - 1:
            h = np.maximum(h, 0.0)
    return ws, bs, h


def _judge_structure(j, cid, n, name):
    """The returned model is an nn.Sequential of the original's layers in order, each nn.ReLU with the original's
    inplace flag, every module in the original's training/eval mode (what copy.deepcopy gives)."""
    call = next(c for c in j.plan.calls if c["id"] == cid)
    mode, flags = call["kwargs"].get("mode", "train"), call["kwargs"].get("inplace") or []
    want_layers = ["Linear", "ReLU"] * (n - 1) + ["Linear"]
    want_flags = [bool(flags[k]) if k < len(flags) else False for k in range(n - 1)]
    container = prop.fact(j, cid, "container", str)
    layers, got_flags = prop.fact(j, cid, "layers", list), prop.fact(j, cid, "relu_inplace", list)
    modes = prop.fact(j, cid, "modes", list)
    problems = []
    if container != "torch.nn.modules.container.Sequential":
        problems.append(f"it is a {container}, not an nn.Sequential")
    elif layers != want_layers:
        problems.append(f"its layers are {layers}, the original's {want_layers}")
    elif got_flags != want_flags:
        problems.append(f"its nn.ReLU layers have inplace={got_flags}, the original's inplace={want_flags} "
                        "(a new nn.ReLU() loses the flag)")
    if modes != [mode == "train"]:
        problems.append(f"the model passed in was in {mode}() mode, and so must be every module of the copy "
                        f"(found training flags {modes}; a model built anew starts in train() mode)")
    if problems:
        j.fail(name, "the converted model must be the original's structure with new weights: " + "; ".join(problems)
               + ". copy.deepcopy(model), then scaling the copy's weights, keeps all of this")
    else:
        j.ok(name)


def _judge_scaled(j, cid, name, p, label, dtype="torch.float32"):
    """Every requirement of one conversion, as properties named '<requirement> (<label>)'."""
    tag = f" ({label})"
    why = j.problem(cid)
    if why:
        j.fail("returns a model" + tag, why)
        return
    if not prop.fact(j, cid, "is_module", bool, False):
        j.fail("returns a model" + tag, f"scale_for_inference returned an object of type {prop.fact(j, cid, 'type', str)}; "
                                        "return the converted nn.Sequential")
        return
    ws, bs, want_out = _trusted(j, name, p)
    n = len(ws)
    if prop.fact(j, cid, "n_linear", int) != n:
        j.fail("returns a model" + tag, f"the returned model has {prop.fact(j, cid, 'n_linear', int)} nn.Linear layers, "
                                        f"the original {n}: keep the architecture")
        return
    j.ok("returns a model" + tag)
    _judge_structure(j, cid, n, "same container, layers, ReLU flags and mode" + tag)
    q = 1.0 - p
    orig = [j.input_array(f"{name}_W{k}") for k in range(n)]
    got_w = [j.array(cid, f"w{k}") for k in range(n)]
    got_b = [j.array(cid, f"b{k}") for k in range(n)]
    close = lambda a, b: a is not None and a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-7)  # noqa: E731
    # The first layer's input is the data, never dropped.
    if close(got_w[0], orig[0]):
        j.ok("first layer unchanged" + tag)
    elif close(got_w[0], orig[0] * q):
        j.fail("first layer unchanged" + tag, "the first nn.Linear was scaled too: its input is the data, which had no dropout, so its weights stay as trained")
    else:
        j.fail("first layer unchanged" + tag, "the first nn.Linear's weights changed; they must stay as trained")
    if n > 1:
        bad = [k for k in range(1, n) if not close(got_w[k], ws[k])]
        if not bad:
            j.ok("later weights scaled by q" + tag)
        else:
            k = bad[0]
            w0 = orig[k]
            if close(got_w[k], w0):
                msg = "left unscaled: every nn.Linear after the first received dropped inputs in training, so multiply its weight by q"
            elif close(got_w[k], w0 * p):
                msg = f"multiplied by p = {p}: scale by the keep probability q = 1 - p = {q:.1f}"
            elif q > 0 and close(got_w[k], w0 / q):
                msg = f"divided by q: classic dropout's test-time rule multiplies the weights by q = {q:.1f} (dividing belongs to inverted dropout's training)"
            else:
                msg = f"not equal to q times the trained weight (q = {q:.1f})"
            j.fail("later weights scaled by q" + tag, f"weight of nn.Linear number {k + 1} (counting from 1) was {msg}")
    bias_bad = [k for k in range(n) if not close(got_b[k], bs[k].astype(np.float32))]
    if not bias_bad:
        j.ok("biases unchanged" + tag)
    elif any(close(got_b[k], bs[k].astype(np.float32) * q) for k in bias_bad):
        j.fail("biases unchanged" + tag, "biases were scaled too: a bias is added after the dropped inputs are summed, so it saw no dropout; leave biases unchanged")
    else:
        j.fail("biases unchanged" + tag, "biases changed; they must stay as trained")
    forward_error = prop.fact(j, cid, "forward_error", str)
    if forward_error:
        j.fail("outputs match" + tag, f"the returned model failed on an input of the original's dtype and device: {forward_error}")
        j.fail("dtype and device kept" + tag, f"the converted model should keep the original's dtype and device ({dtype} on "
               f"{j.plan.device}): scale a deep copy, or build new layers with the old weight's dtype and device")
    else:
        out = j.array(cid, "out")
        j.expect("outputs match" + tag,
                 out is not None and out.shape == want_out.shape and np.allclose(out, want_out, rtol=1e-4, atol=1e-5),
                 "the returned model's outputs differ from the trained network with later weights scaled by q")
        j.expect("dtype and device kept" + tag,
                 prop.fact(j, cid, "out_dtype", str) == dtype and prop.fact(j, cid, "out_device", str) == j.plan.device.split(":")[0],
                 f"the converted model should keep the original's dtype and device ({dtype} on {j.plan.device}); "
                 f"got {prop.fact(j, cid, 'out_dtype', str)} on {prop.fact(j, cid, 'out_device', str)}")
    orig_after = [j.array(cid, f"orig_w{k}") for k in range(n)] + [j.array(cid, f"orig_b{k}") for k in range(n)]
    before = orig + [j.input_array(f"{name}_b{k}") for k in range(n)]
    untouched = all(a is not None and a.shape == b.shape and np.array_equal(a, b.astype(a.dtype)) for a, b in zip(orig_after, before))
    if untouched:
        j.ok("original model unchanged" + tag)
    else:
        same = " and returned the same object" if prop.fact(j, cid, "same_object", bool) else ""
        j.fail("original model unchanged" + tag,
               f"the model passed in was modified{same}: scale_for_inference returns a converted copy "
               "(copy.deepcopy(model), then scale the copy's weights)")


def _scale_contract_plan(plan, rng):
    plan.inputs["x"] = rng.normal(size=(64, 12)).astype(np.float32)
    net = _random_net(plan, rng, "a", (12, 20, 16, 5))
    # A model in eval() mode with an in-place first ReLU: the copy keeps both (see _judge_structure).
    plan.call("a", net, tensor("x"), 0.3, mode="eval", inplace=[True, False],
              scenario="autograde.checks.inverted_dropout:scale_scenario")


def _scale_contract_judge(j):
    _judge_scaled(j, "a", "a", 0.3, "p=0.3")


def _scale_hidden_plan(plan, rng):
    sc = "autograde.checks.inverted_dropout:scale_scenario"
    plan.inputs["x"] = rng.normal(size=(32, 10)).astype(np.float32)
    deep = _random_net(plan, rng, "d", (10, 24, 24, 24, 3))
    plan.call("deep", deep, tensor("x"), 0.8, inplace=[False, True, False], scenario=sc)
    plan.call("deep0", deep, tensor("x"), 0.0, scenario=sc)
    plan.call("deep1", deep, tensor("x"), 1.0, scenario=sc)
    one = _random_net(plan, rng, "o", (10, 4))
    plan.call("one", one, tensor("x"), 0.1, scenario=sc)
    plan.call("neg", one, tensor("x"), -0.2, scenario=sc)
    plan.call("big", one, tensor("x"), 1.3, scenario=sc)
    plan.call("f64", deep, tensor("x"), 0.1, dtype="float64", scenario=sc)


def _scale_hidden_judge(j):
    _judge_scaled(j, "deep", "d", 0.8, "4 layers, p=0.8")
    _judge_scaled(j, "deep0", "d", 0.0, "p=0")
    _judge_scaled(j, "deep1", "d", 1.0, "p=1")
    _judge_scaled(j, "one", "o", 0.1, "a single nn.Linear")
    _judge_scaled(j, "f64", "d", 0.1, "float64 model", dtype="torch.float64")
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big"], "ValueError", [-0.2, 1.3])


# ---------------------------------------------------------------------------------------------
# practice questions (chapter 4); the explanations are the chapter's toggled answers
# ---------------------------------------------------------------------------------------------
ANSWERS = [
    ("answer_q1", "b", "at evaluation the next layer receives x, but during training it received m * x, whose mean is q * x"),
    ("answer_q2", "c", "inverted dropout's evaluation output is already the training average; a further factor q shrinks it"),
    ("answer_q3", "a", "Keras' Dropout layer is inverted dropout, and Keras changes no weights at inference"),
    ("answer_q4", "d", "the loss gradient is zero for a dropped unit's weights, but an optimizer's update is more than this step's loss gradient"),
    ("answer_q5", "b", "Srivastava et al. write p for the probability of keeping a unit; PyTorch's p is the probability of dropping it"),
]


CHECKS = [
    Check("dropout_inverted.contract", "dropout_inverted", _inv_contract_plan, _inv_contract_judge,
          "kept values x / q, drop rate at p = 0.1, 0.3, 0.8, evaluation returns x, p = 0 and 1 (zeros, not NaN), ValueError"),
    Check("dropout_inverted.safety", "dropout_inverted", _inv_safety_plan, _inv_safety_judge,
          "input untouched, gradients m / q * upstream and upstream, float64, independent and fresh masks, the generator honoured"),
    Check("Dropout.contract", "Dropout", _mod_contract_plan, _mod_contract_judge,
          "an nn.Module without parameters; drop rate and kept values x / q in train(), x after eval() (also through a parent), ValueError at construction"),
    Check("Dropout.masks", "Dropout", _mod_masks_plan, _mod_masks_judge,
          "a fresh mask each forward, independent across the batch, train() after eval() drops again, gradient, input untouched"),
    Check("scale_for_inference.contract", "scale_for_inference", _scale_contract_plan, _scale_contract_judge,
          "weights of every nn.Linear after the first times q, first layer and biases unchanged, the original not modified"),
    Check("scale_for_inference.more", "scale_for_inference", _scale_hidden_plan, _scale_hidden_judge,
          "deeper nets at p = 0.8, p = 0 and 1, a single layer, float64, ValueError"),
] + [
    prop.answer_check(f"{var}.inverted_dropout", var, [letter], f"{hint} (chapter 4, Practice questions)")
    for var, letter, hint in ANSWERS
]
