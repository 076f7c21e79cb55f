"""Checks for assignment 06_rnn_dropout: ``locked_dropout``, ``VariationalRNNCell`` and ``zoneout``.

p is a DROP probability for dropout, q = 1 - p; for zoneout p is the probability of KEEPING the previous
hidden value, as in Krueger et al. 2016.

Contract clause (the task text above each graded function) -> check.property that exercises it.

``locked_dropout(x, p, training=True, generator=None)``
- x is (T, B, H); one decision per (b, h), the same at all T steps -> locked_dropout.contract."same mask at every
  time step at p=..."
- independent across batch elements and features -> locked_dropout.randomness."batch elements independent at
  p=...", "hidden units independent at p=..."
- a fresh mask on each call -> locked_dropout.randomness."fresh mask each call"
- each decision drops with probability p -> locked_dropout.contract."drop rate at p=..." (p = 0.1, 0.3, 0.8)
- x * m / q, kept values x / q (relative error 1e-5), dropped 0 -> locked_dropout.contract."kept values are x / q
  at p=..."
- training=False returns x -> locked_dropout.contract."evaluation returns x", "evaluation at p=1 returns x"
- p = 0 returns x, p = 1 zeros, never NaN -> locked_dropout.contract."p=0 is the identity", "p=1 gives zeros"
- ValueError for x not 3-D or p outside [0, 1], in training and evaluation -> locked_dropout.contract."ValueError
  for x that is not 3-D", "ValueError for p outside [0, 1]"
- generator when given, else PyTorch's global random state -> locked_dropout.randomness."generator honoured",
  "generator seed matters", "global random state without a generator"
- x's dtype and device; float64 with kept values x / q to 1e-12 -> locked_dropout.contract."dtype", "device"
  (CUDA only: "cuda" skipped with a note on a CPU-only machine); locked_dropout.safety."float64 preserved"
- x never modified -> locked_dropout.safety."input unchanged"
- gradient m / q * upstream in training, upstream at evaluation; at p = 1 zero or none -> locked_dropout.safety.
  "gradient in training is mask / q * upstream", "gradient at evaluation is upstream", "gradient at p=1 is zero
  or absent"

``VariationalRNNCell(input_size, hidden_size, p_input, p_hidden)``
- ValueError for p_input or p_hidden outside [0, 1] -> VariationalRNNCell.structure."ValueError for p outside
  [0, 1]"
- exactly self.ih = nn.Linear(input_size, hidden_size) and self.hh = nn.Linear(hidden_size, hidden_size,
  bias=False), no other parameters -> "builds and runs" (both checks), VariationalRNNCell.structure."layers ih and
  hh as specified"
- forward returns all hidden states (T, B, hidden_size), from h = 0, h = tanh(ih(x_t m_x / q_x) + hh(h m_h / q_h))
  -> "output shape" (both checks), VariationalRNNCell.structure."update h_t = tanh(ih(x~_t) + hh(h~_{t-1}))",
  "evaluation is the plain RNN" (h_0 = 0 shows there)
- masks drawn once per forward call and reused at every step -> VariationalRNNCell.structure."input mask reused
  at every step", "recurrent mask reused at every step"
- m_x drops with p_input, m_h with p_hidden, every entry independently, scaled by 1/q -> VariationalRNNCell.
  structure."input drop rate at p=0.3", "recurrent drop rate at p=0.8", "kept input values scaled by 1/q", "kept
  recurrent values scaled by 1/q"; VariationalRNNCell.randomness."... masks independent across the batch",
  "... masks independent across units"
- new masks on the next call -> VariationalRNNCell.randomness."input masks fresh each forward call", "recurrent
  masks fresh each forward call"
- eval mode: no masks, no scaling, the plain RNN -> VariationalRNNCell.structure."evaluation is the plain RNN";
  VariationalRNNCell.randomness."evaluation is deterministic"
- ih on the masked input (per step or whole sequence), hh once per step (t = 0 may be skipped) -> read by the
  hooks; another calling pattern fails "input mask reused at every step" / "recurrent mask reused at every step"
  with a message saying how ih and hh were called
- gradients reach both layers -> VariationalRNNCell.structure."gradients reach ih and hh"

``zoneout(h_prev, h_new, p, training=True, generator=None)`` (p is the probability of KEEPING h_prev)
- same shape, any shape, else ValueError (no broadcasting), in training and evaluation -> zoneout.contract.
  "ValueError for shapes that differ", "any shape: a 3-D state"
- training: each entry h_prev's with probability p, else h_new's, independently, no scaling -> zoneout.contract.
  "each entry is h_prev or h_new at p=...", "keeps h_prev with probability p=..."; zoneout.randomness."batch
  elements independent at p=...", "hidden units independent at p=..."
- a fresh draw on each call; generator when given, else PyTorch's global random state -> zoneout.randomness.
  "fresh mask each call", "generator honoured", "generator seed matters", "global random state without a
  generator"
- training=False: p * h_prev + (1 - p) * h_new (1e-5 relative + 1e-6 absolute) -> zoneout.contract."evaluation
  is p * h_prev + (1 - p) * h_new"
- p = 0 gives h_new, p = 1 gives h_prev; ValueError for p outside [0, 1], in training and evaluation ->
  zoneout.contract."p=0 gives h_new", "p=1 gives h_prev", "ValueError for p outside [0, 1]"
- dtype and device as the inputs' -> zoneout.contract."dtype", "device" (CUDA only); zoneout.safety."float64
  preserved"
- neither input modified -> zoneout.safety."inputs unchanged"
- gradients mask * upstream to h_prev, (1 - mask) * upstream to h_new; p and 1 - p times upstream at evaluation
  -> zoneout.safety."gradient to h_prev is mask * upstream", "gradient to h_new is (1 - mask) * upstream",
  "gradient at evaluation is p and 1 - p times upstream"

Practice questions -> answer_qN.rnn_dropout."answer" (letters in any case and spacing; question 4 a number of any
real type within 1e-6 of it, relative).

How the cell's masks are seen without trusting or patching the student's code: the scenario
:func:`cell_scenario` registers forward pre-hooks on the student's own ``ih`` and ``hh`` layers, which
record the tensors those layers receive at every step. Inputs x have no zeros and hidden states are
tanh outputs (never exactly 0 here), so a zero in what ``ih`` or ``hh`` received is a dropped unit,
and a kept value divided by the raw value is the scaling.
"""

from __future__ import annotations

import numpy as np

from ..probe import generator, plan_device, tensor, scenario
from . import Check
from . import properties as prop

F32 = "torch.float32"
RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 a swapped keep/drop probability would be invisible
SEQ = (6, 128, 96)  # (T, B, H) with T, B and H all different, so every axis mix-up shows
SAFE_SEQ = (5, 64, 80)


# ---------------------------------------------------------------------------------------------
# locked_dropout
# ---------------------------------------------------------------------------------------------
def _dropped_pattern(out: np.ndarray) -> np.ndarray:
    return out == 0


def _constant_along(dropped: np.ndarray, axis: int) -> bool:
    first = np.take(dropped, [0], axis=axis)
    return bool((dropped == first).all())


def judge_time_sharing(j, name: str, dropped: np.ndarray) -> bool:
    """``dropped`` (T, B, H): the pattern must be the same at every time step."""
    if _constant_along(dropped, 0):
        j.ok(name)
        return True
    changes = float((dropped != dropped[:1]).any(axis=0).mean())
    if _constant_along(dropped, 1):
        hint = ("the mask is constant along axis 1 and changes along axis 0: x is time-first (T, B, H), so axis 0 "
                "is time and axis 1 the batch (batch-first confusion); draw the mask with shape (1, B, H)")
    else:
        hint = ("a fresh mask seems to be drawn at every time step (naive dropout); draw one (B, H) mask per call "
                "and reuse it at every step, e.g. shape (1, B, H) broadcast over T")
    j.fail(name, f"for {prop.pct(changes)} of the (b, h) positions the dropped/kept decision changes between time "
                 f"steps, but locked dropout keeps it fixed along T: {hint}")
    return False


def _locked_contract_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, SEQ)
    plan.inputs["x_small"] = prop.nonzero_input(rng, (4, 20, 30))
    plan.inputs["x2d"] = prop.nonzero_input(rng, (20, 30))
    plan.inputs["x4d"] = prop.nonzero_input(rng, (4, 20, 30, 2))
    for p in RATES:
        plan.call(f"t{p}", tensor("x"), p)
    plan.call("e0.3", tensor("x"), 0.3, training=False)
    plan.call("t0", tensor("x_small"), 0.0)
    plan.call("t1", tensor("x_small"), 1.0)
    plan.call("e1", tensor("x_small"), 1.0, training=False)
    plan.call("neg", tensor("x_small"), -0.1)
    plan.call("big", tensor("x_small"), 1.5)
    plan.call("x2d", tensor("x2d"), 0.3)
    plan.call("x4d", tensor("x4d"), 0.3)
    plan.call("neg_eval", tensor("x_small"), -0.1, training=False)
    plan.call("x2d_eval", tensor("x2d"), 0.3, training=False)


def _locked_contract_judge(j):
    x = j.input_array("x")
    first = prop.tensor_out(j, "returns a tensor", f"t{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    if not j.expect("shape", first.shape == x.shape, f"expected the shape of x, {x.shape}, got {first.shape}"):
        return
    prop.dtype_device(j, f"t{RATES[1]}", F32, j.plan.device)
    prop.cuda_note(j)
    for p in RATES:
        out = prop.input_like(j, f"same mask at every time step at p={p}", f"t{p}", "x")
        if out is None:
            continue
        dropped = _dropped_pattern(out)
        judge_time_sharing(j, f"same mask at every time step at p={p}", dropped)
        kept = ~dropped
        q = 1 - p
        if np.allclose(out[kept], x[kept] / q, rtol=1e-5, atol=0):
            j.ok(f"kept values are x / q at p={p}")
        elif np.array_equal(out[kept], x[kept]):
            j.fail(f"kept values are x / q at p={p}", "kept values equal x: the inverted scaling is missing; "
                   "divide the survivors by q = 1 - p so that the expected output equals x")
        elif np.allclose(out[kept], x[kept] / p, rtol=1e-5):
            j.fail(f"kept values are x / q at p={p}", "kept values equal x / p: divide by the keep probability q = 1 - p, not by p")
        else:
            j.fail(f"kept values are x / q at p={p}", f"entries that survive must equal x / (1 - p) = x / {q:.1f}")
        # One (B, H) mask: its drop rate is a binomial over B * H positions (time step 0's decisions).
        prop.drop_rate(j, f"drop rate at p={p}", dropped[0], p)
    ev = prop.input_like(j, "evaluation returns x", "e0.3", "x", "with training=False the output")
    if ev is not None:
        if np.array_equal(ev, x):
            j.ok("evaluation returns x")
        elif (ev == 0).any():
            j.fail("evaluation returns x", f"{prop.pct(float((ev == 0).mean()))} of entries were zeroed with "
                   "training=False: dropout must not drop at evaluation")
        else:
            j.fail("evaluation returns x", "with training=False inverted dropout returns x unchanged (no scaling either)")
    xs = j.input_array("x_small")
    t0 = prop.input_like(j, "p=0 is the identity", "t0", "x_small", "at p = 0 the output")
    if t0 is not None:
        j.expect("p=0 is the identity", np.array_equal(t0, xs), "at p = 0 nothing is dropped and q = 1: the output must equal x")
    t1 = prop.input_like(j, "p=1 gives zeros", "t1", "x_small", "at p = 1 the output")
    if t1 is not None:
        if np.isnan(t1).any():
            j.fail("p=1 gives zeros", "at p = 1 the output contains NaN (0 / q with q = 0?): return zeros at p = 1")
        else:
            j.expect("p=1 gives zeros", (t1 == 0).all(), "at p = 1 everything is dropped: the output must be all zeros")
    e1 = prop.input_like(j, "evaluation at p=1 returns x", "e1", "x_small", "with training=False the output")
    if e1 is not None:
        j.expect("evaluation at p=1 returns x", np.array_equal(e1, xs), "with training=False the output is x whatever p is")
    prop.raises(j, "ValueError for p outside [0, 1]", ["neg", "big", "neg_eval"], "ValueError", [-0.1, 1.5, -0.1])
    bad = [s for cid, s in (("x2d", "(20, 30)"), ("x4d", "(4, 20, 30, 2)"), ("x2d_eval", "(20, 30) with training=False"))
           if not j.raised(cid, "ValueError")]
    j.expect("ValueError for x that is not 3-D", not bad,
             "x must be time-first (T, B, H); raise ValueError for any other number of dimensions, also with "
             "training=False; no ValueError for " + ", ".join(f"x of shape {s}" for s in bad))


def _locked_randomness_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["x"] = prop.nonzero_input(rng, SEQ)
    plan.call("a", tensor("x"), 0.3)
    plan.call("b", tensor("x"), 0.3)
    plan.call("c", tensor("x"), 0.8)
    plan.call("g1", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, generator=generator(seed + 1))
    prop.global_seed(plan, ("s1", "s2"), tensor("x"), 0.3)


def judge_mask_randomness(j, masks: dict, what_b: str, what_h: str, mistake_b: str, mistake_h: str,
                          fresh=("a", "b"), wide="c", p_fresh=0.3, p_wide=0.8, gens=("g1", "g2", "g3")) -> None:
    """``masks[cid]`` is a (B, H) boolean 'dropped' mask or None: rows = batch, columns = units."""
    a, b = masks.get(fresh[0]), masks.get(fresh[1])
    if a is not None and b is not None:
        prop.independent(j, "fresh mask each call", a, b, p_fresh, "two calls' masks",
                         "the same mask comes back every call (a seed set inside the function, or a mask cached?)")
    for p, cid in ((p_fresh, fresh[0]), (p_wide, wide)):
        m = masks.get(cid)
        if m is None:
            continue
        prop.independent(j, f"{what_b} independent at p={p}", m[0::2], m[1::2], p, f"neighbouring {what_b}", mistake_b)
        prop.independent(j, f"{what_h} independent at p={p}", m[:, 0::2], m[:, 1::2], p, f"neighbouring {what_h}", mistake_h)
    g1, g2, g3 = (masks.get(c) for c in gens)
    if g1 is None or g2 is None or g3 is None:
        return
    if j.expect("generator honoured", np.array_equal(g1, g2),
                "two calls with generators seeded alike gave different masks: draw from the generator argument "
                "(torch.rand(..., generator=generator)) instead of the global random state"):
        prop.independent(j, "generator seed matters", g1, g3, p_fresh, "masks from differently seeded generators",
                         "the generator's seed seems to be ignored")


def _locked_randomness_judge(j):
    masks = {}
    for cid in ("a", "b", "c", "g1", "g2", "g3"):
        out = prop.input_like(j, "returns a tensor", cid, "x")
        if out is not None:
            masks[cid] = out[0] == 0  # time step 0's (B, H) decisions
    if len(masks) == 6:
        j.ok("returns a tensor")
    judge_mask_randomness(
        j, masks, "batch elements", "hidden units",
        "one mask seems to be shared by the whole batch: draw a mask entry for every (b, h), shape (1, B, H)",
        "whole sequences are kept or dropped together: draw one value per hidden unit, not one per batch element",
    )
    prop.judge_global_seed(j, ("s1", "s2"), j.input_array("x").shape)


def _locked_safety_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, SAFE_SEQ)
    plan.inputs["g"] = rng.normal(size=SAFE_SEQ).astype(np.float32)
    plan.inputs["x64"] = prop.nonzero_input(rng, (4, 30, 40)).astype(np.float64)
    plan.call("inplace", tensor("x"), 0.3)
    plan.call("grad", tensor("x", requires_grad=True), 0.3, backward="g")
    plan.call("grad_eval", tensor("x", requires_grad=True), 0.3, training=False, backward="g")
    plan.call("grad_p1", tensor("x", requires_grad=True), 1.0, backward="g")
    plan.call("f64", tensor("x64", "float64"), 0.3)


def judge_gradient(j, cid: str, index: int, expected_fn, what: str, hint: str) -> None:
    """``expected_fn(out)`` gives the gradient of the call's ``index``-th tensor argument."""
    g = j.input_array("g")
    out = prop.tensor_out(j, what, cid, g.shape)
    if out is None:
        return
    rec = j.record(cid)
    if isinstance(rec.get("backward_error"), dict):
        j.fail(what, f"backward failed: {rec['backward_error'].get('exc_message', '')} (is the output detached, or built with numpy?)")
        return
    grad = j.array(cid, f"grad/{index}")
    if grad is None:
        j.fail(what, "the input received no gradient: keep the computation in torch so autograd can follow it "
                     "(no .detach(), .numpy() or torch.no_grad())")
        return
    expected = expected_fn(out)
    j.expect(what, grad.shape == expected.shape and bool(np.allclose(grad, expected, rtol=1e-5, atol=1e-6)), hint)


def _locked_safety_judge(j):
    prop.unchanged_input(j, "inplace", "x")
    g = j.input_array("g")
    judge_gradient(j, "grad", 0, lambda out: g * (out != 0) / np.float32(0.7), "gradient in training is mask / q * upstream",
                   "the gradient with respect to x should be the upstream gradient masked and divided by q, like the forward pass")
    judge_gradient(j, "grad_eval", 0, lambda out: g, "gradient at evaluation is upstream",
                   "with training=False the output is x, so the gradient is the upstream gradient unchanged")
    prop.judge_gradient_p1(j, "grad_p1")
    x64 = j.input_array("x64")
    out64 = prop.tensor_out(j, "float64 preserved", "f64", x64.shape)
    if out64 is not None:
        got = prop.out_dtype(j, "f64")
        kept = out64 != 0
        j.expect("float64 preserved",
                 got == "torch.float64" and np.allclose(out64[kept], x64[kept] / 0.7, rtol=1e-12, atol=0),
                 f"a float64 input must give a float64 output with kept values x / q to float64 precision; got {got} "
                 "(is the mask made as float32 and the product cast?)")


# ---------------------------------------------------------------------------------------------
# VariationalRNNCell
# ---------------------------------------------------------------------------------------------
CELL_T, CELL_B, CELL_I, CELL_H = 5, 200, 24, 40
P_INPUT, P_HIDDEN = 0.3, 0.8  # different, asymmetric: a swap of the two or of keep/drop shows


@scenario("out_*", "ih_*", "hh_*")
def cell_scenario(cls, x, w_ih, b_ih, w_hh, p_input, p_hidden, device):
    """Trusted: construct the student's cell, load the plan's weights, and record what ``ih`` and ``hh``
    receive at every step (forward pre-hooks), in two training forward calls and two evaluation calls."""
    import torch
    from torch import nn

    t, b, i = x.shape
    h = w_hh.shape[0]
    facts: dict = {}
    for bad_p in ((1.5, p_hidden), (p_input, -0.2)):
        try:
            cls(i, h, *bad_p)
            facts[f"valueerror_{bad_p}"] = "none"
        except ValueError:
            facts[f"valueerror_{bad_p}"] = "ValueError"
        except Exception as exc:  # noqa: BLE001 - any other exception is an answer too
            facts[f"valueerror_{bad_p}"] = type(exc).__name__
    cell = cls(i, h, p_input, p_hidden)
    if not isinstance(cell, nn.Module):
        return {**facts, "problem": f"VariationalRNNCell(...) made a {type(cell).__name__}, not a torch.nn.Module"}
    ih, hh = getattr(cell, "ih", None), getattr(cell, "hh", None)
    if not isinstance(ih, nn.Linear) or not isinstance(hh, nn.Linear):
        return {**facts, "problem": "the cell must define self.ih = nn.Linear(input_size, hidden_size) and "
                                    "self.hh = nn.Linear(hidden_size, hidden_size, bias=False) (names as given)"}
    if tuple(ih.weight.shape) != (h, i) or tuple(hh.weight.shape) != (h, h) or ih.bias is None:
        return {**facts, "problem": f"expected ih = nn.Linear({i}, {h}) with a bias and hh = nn.Linear({h}, {h}); got "
                                    f"ih weight {tuple(ih.weight.shape)} (bias {ih.bias is not None}) and hh weight "
                                    f"{tuple(hh.weight.shape)}"}
    cell.to(device)
    with torch.no_grad():
        ih.weight.copy_(w_ih)
        ih.bias.copy_(b_ih)
        hh.weight.copy_(w_hh)
        if hh.bias is not None:  # the contract says bias=False; zero one if present so the recurrence is comparable
            hh.bias.zero_()
    facts["hh_bias"] = hh.bias is not None
    facts["parameters"] = sorted(name for name, _ in cell.named_parameters())
    seen: dict[str, list] = {"ih": [], "hh": []}
    hooks = [
        ih.register_forward_pre_hook(lambda mod, args: seen["ih"].append(args[0].detach().clone())),
        hh.register_forward_pre_hook(lambda mod, args: seen["hh"].append(args[0].detach().clone())),
    ]
    try:
        for name, training in (("a", True), ("b", True), ("e1", False), ("e2", False)):
            seen["ih"].clear()
            seen["hh"].clear()
            cell.train(training)
            if training and name == "a":
                out = cell(x)
            else:
                with torch.no_grad():
                    out = cell(x)
            if not isinstance(out, torch.Tensor):
                return {**facts, "problem": f"forward returned a {type(out).__name__}; expected a tensor of shape (T, B, hidden_size)"}
            facts[f"out_{name}"] = out.detach()
            facts[f"ih_shapes_{name}"] = [list(r.shape) for r in seen["ih"]]
            facts[f"hh_calls_{name}"] = len(seen["hh"])
            steps = []
            for r in seen["ih"]:
                if r.dim() == 3:
                    steps += list(r.unbind(0))
                elif r.dim() == 2 and r.shape[0] == t * b:
                    steps += list(r.view(t, b, -1).unbind(0))
                else:
                    steps.append(r)
            if len(steps) == t and all(tuple(s.shape) == (b, i) for s in steps):
                facts[f"ih_{name}"] = torch.stack(steps)
            if seen["hh"] and all(tuple(r.shape) == (b, h) for r in seen["hh"]):
                facts[f"hh_{name}"] = torch.stack(seen["hh"])
            if name == "a":
                try:
                    out.sum().backward()
                except Exception as exc:  # noqa: BLE001 - a graph without gradients is an answer, judged below
                    facts["backward_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                facts["grad_ih"] = ih.weight.grad is not None and bool(torch.isfinite(ih.weight.grad).all())
                facts["grad_hh"] = hh.weight.grad is not None and bool(torch.isfinite(hh.weight.grad).all())
    finally:
        for hook in hooks:
            hook.remove()
    return facts


def _cell_plan(plan, rng):
    t, b, i, h = CELL_T, CELL_B, CELL_I, CELL_H
    plan.inputs["x"] = prop.nonzero_input(rng, (t, b, i))
    plan.inputs["w_ih"] = (rng.normal(size=(h, i)) / np.sqrt(i)).astype(np.float32)
    plan.inputs["b_ih"] = (0.1 * rng.normal(size=h)).astype(np.float32)
    plan.inputs["w_hh"] = (0.5 * rng.normal(size=(h, h)) / np.sqrt(h)).astype(np.float32)
    plan.call("cell", tensor("x"), tensor("w_ih"), tensor("b_ih"), tensor("w_hh"), P_INPUT, P_HIDDEN, plan_device(),
              scenario="autograde.checks.rnn_dropout:cell_scenario")


def reference_rnn(x, w_ih, b_ih, w_hh, x_in=None, h_in=None):
    """The trusted recurrence in float64. With ``x_in``/``h_in`` (what ih and hh received) it recomputes the
    training forward pass from the masked inputs; without, the evaluation pass."""
    x, w_ih, b_ih, w_hh = (np.asarray(a, dtype=np.float64) for a in (x, w_ih, b_ih, w_hh))
    t, b, _ = x.shape
    h = np.zeros((b, w_hh.shape[0]))
    outs = []
    for s in range(t):
        xs = x[s] if x_in is None else x_in[s]
        hs = h if h_in is None else h_in[s]
        h = np.tanh(xs @ w_ih.T + b_ih + hs @ w_hh.T)
        outs.append(h)
    return np.stack(outs)


def _cell_array(j, key: str):
    """A cell scenario's array ``key`` ('out_a', 'ih_b', 'hh_a', ...) if it has the shape the scenario records
    (it records ih_* and hh_* only when every step had the expected shape); None otherwise."""
    arr = j.array("cell", key)
    if arr is None:
        return None
    kind = key.split("_")[0]
    if kind == "out":
        ok = arr.shape == (CELL_T, CELL_B, CELL_H)
    elif kind == "ih":
        ok = arr.shape == (CELL_T, CELL_B, CELL_I)
    else:
        ok = arr.ndim == 3 and arr.shape[1:] == (CELL_B, CELL_H)
    return arr if ok and arr.dtype.kind == "f" else None


def _cell_basics(j):
    """Shared opening of both cell checks; returns False when nothing more can be judged."""
    why = j.problem("cell")
    if why:
        j.fail("builds and runs", why)
        return False
    problem = prop.fact(j, "cell", "problem", str)
    if problem:
        j.fail("builds and runs", problem)
        return False
    j.ok("builds and runs")
    out = _cell_array(j, "out_a")
    raw = j.array("cell", "out_a")
    shape = (CELL_T, CELL_B, CELL_H)
    if not j.expect("output shape", out is not None,
                    f"forward(x) with x of shape {(CELL_T, CELL_B, CELL_I)} must return every hidden state as a float "
                    f"tensor of shape {shape}; got {None if raw is None else f'{raw.dtype} of shape {raw.shape}'}"):
        return False
    return True


def _recurrent_inputs(j, name: str):
    """(hh inputs, previous hidden states) aligned for steps 1..T-1, or a reason why not."""
    hh = _cell_array(j, f"hh_{name}")
    out = _cell_array(j, f"out_{name}")
    calls = prop.fact(j, "cell", f"hh_calls_{name}", int)
    if out is None:
        return None, None, f"forward(x) returned no hidden states of shape {(CELL_T, CELL_B, CELL_H)}"
    if hh is None:
        return None, None, (f"self.hh was called {calls} times with inputs of shape other than (B, hidden_size): call "
                            "self.hh(h_prev_masked) once per time step")
    if len(hh) == CELL_T:
        return hh[1:], out[:-1], None  # step 0 sees h = 0, which shows no mask
    if len(hh) == CELL_T - 1:
        return hh, out[:-1], None  # the first step skipped hh (h0 = 0)
    return None, None, f"self.hh was called {len(hh)} times for a sequence of {CELL_T} steps: call it once per step"


def _input_steps(j, name: str):
    ih = _cell_array(j, f"ih_{name}")
    if ih is None:
        shapes = prop.fact(j, "cell", f"ih_shapes_{name}", list, [])
        return None, (f"self.ih received inputs of shapes {shapes[:3]}{' ...' if len(shapes) > 3 else ''}: call self.ih on "
                      "each masked x_t of shape (B, input_size), or once on the whole masked sequence (T, B, input_size)")
    return ih, None


def _judge_site(j, label: str, received: np.ndarray, raw: np.ndarray, p: float, stat: bool) -> np.ndarray | None:
    """received / raw (steps, B, K): mask reuse, scaling and (when ``stat``) drop rate; returns the (B, K) mask."""
    usable = np.abs(raw) > 1e-4
    dropped = (received == 0) & usable
    kept = (received != 0) & usable
    q = 1 - p
    if not dropped.any():
        if np.allclose(received[usable], raw[usable], rtol=1e-5, atol=1e-7):
            what = "x_t" if label == "input" else "the previous hidden state h_{t-1}"
            j.fail(f"{label} mask reused at every step",
                   f"{what} reached self.{'ih' if label == 'input' else 'hh'} unmasked: no {label} dropout is applied "
                   f"(multiply {what} by its mask and divide by q before the layer)")
        else:
            j.fail(f"{label} mask reused at every step", f"no {label} unit was ever dropped at p = {p}")
        return None
    # Where the raw value is too small to read, assume the decision of the first readable step.
    same = (dropped == dropped[:1]) | ~usable | ~usable[:1]
    if same.all():
        j.ok(f"{label} mask reused at every step")
    else:
        changes = float((~same).any(axis=0).mean())
        j.fail(f"{label} mask reused at every step",
               f"for {prop.pct(changes)} of the (b, unit) positions the {label} mask changes between time steps: draw the "
               "mask once per forward call (per sequence) and reuse it at every step, not a fresh mask per step")
    ratio = received[kept] / raw[kept]
    if np.allclose(ratio, 1 / q, rtol=1e-4):
        j.ok(f"kept {label} values scaled by 1/q")
    elif np.allclose(ratio, 1.0, rtol=1e-4):
        j.fail(f"kept {label} values scaled by 1/q", f"kept {label} values arrive unscaled: divide by q = 1 - p = {q:.1f} "
                                                    "(inverted dropout), so that evaluation needs no change")
    else:
        j.fail(f"kept {label} values scaled by 1/q", f"kept {label} values were multiplied by about {np.median(ratio):.3g}; "
                                                    f"expected 1 / q = {1 / q:.3g} with p = {p}")
    mask = dropped[0] if usable[0].all() else dropped.any(axis=0)
    if stat:
        prop.drop_rate(j, f"{label} drop rate at p={p}", mask, p)
    return mask


def _cell_structure_judge(j):
    if not _cell_basics(j):
        return
    x, w_ih, b_ih, w_hh = (j.input_array(k) for k in ("x", "w_ih", "b_ih", "w_hh"))
    ih, why = _input_steps(j, "a")
    if why:
        j.fail("input mask reused at every step", why)
    else:
        _judge_site(j, "input", ih, x, P_INPUT, stat=True)
    hh, h_prev, why = _recurrent_inputs(j, "a")
    if why:
        j.fail("recurrent mask reused at every step", why)
    else:
        _judge_site(j, "recurrent", hh, h_prev, P_HIDDEN, stat=True)
    out = _cell_array(j, "out_a")
    if ih is not None and hh is not None:
        hh_full = hh if len(hh) == CELL_T else np.concatenate([np.zeros_like(hh[:1]), hh])
        again = reference_rnn(x, w_ih, b_ih, w_hh, x_in=ih, h_in=hh_full)
        j.expect("update h_t = tanh(ih(x~_t) + hh(h~_{t-1}))", np.allclose(out, again, atol=1e-4, rtol=1e-4),
                 "the returned hidden states do not follow from what ih and hh received: h_t = tanh(self.ih(x_t masked) + "
                 "self.hh(h_{t-1} masked)), with the unmasked h_t fed to the next step and returned")
    e1 = _cell_array(j, "out_e1")
    if e1 is None:
        j.fail("evaluation is the plain RNN", "no hidden states of the expected shape came back from an eval-mode forward call")
    else:
        ref = reference_rnn(x, w_ih, b_ih, w_hh)
        if np.allclose(e1, ref, atol=1e-4, rtol=1e-4):
            j.ok("evaluation is the plain RNN")
        elif _cell_array(j, "ih_e1") is not None and (_cell_array(j, "ih_e1") == 0).any():
            j.fail("evaluation is the plain RNN", "inputs were dropped in eval mode: use the masks only when self.training is True")
        else:
            j.fail("evaluation is the plain RNN", "in eval mode the output should be the deterministic RNN "
                   "h_t = tanh(ih(x_t) + hh(h_{t-1})) from h_0 = 0, with no masks and no scaling "
                   f"(largest difference {float(np.abs(e1 - ref).max()):.3g})")
    params = prop.fact(j, "cell", "parameters", list)
    want = ["hh.weight", "ih.bias", "ih.weight"]
    j.expect("layers ih and hh as specified", params == want,
             f"the cell's parameters are {params}; expected exactly {want}: self.ih = nn.Linear(input_size, hidden_size) "
             "with its bias and self.hh = nn.Linear(hidden_size, hidden_size, bias=False), nothing else to train"
             + (" (self.hh has a bias: pass bias=False)" if isinstance(params, list) and "hh.bias" in params else ""))
    error = prop.fact(j, "cell", "backward_error", str)
    j.expect("gradients reach ih and hh", prop.fact(j, "cell", "grad_ih", bool, False) and prop.fact(j, "cell", "grad_hh", bool, False),
             "after backward, self.ih.weight and self.hh.weight need gradients: build the output with torch operations "
             "from these layers (no .detach(), numpy or torch.no_grad())" + (f"; backward failed with {error}" if error else ""))
    bad = [k for k in (f"valueerror_{(1.5, P_HIDDEN)}", f"valueerror_{(P_INPUT, -0.2)}") if prop.fact(j, "cell", k, str) != "ValueError"]
    j.expect("ValueError for p outside [0, 1]", not bad,
             "VariationalRNNCell(..., p_input, p_hidden) must raise ValueError when either probability is outside [0, 1]; got "
             + ", ".join(str(prop.fact(j, "cell", k, str)) for k in bad))


def _cell_randomness_judge(j):
    if not _cell_basics(j):
        return
    x = j.input_array("x")
    masks: dict[str, dict] = {"input": {}, "recurrent": {}}
    for name in ("a", "b"):
        ih, _ = _input_steps(j, name)
        if ih is not None:
            usable = np.abs(x) > 1e-4
            masks["input"][name] = ((ih == 0) & usable).any(axis=0)
        hh, h_prev, _ = _recurrent_inputs(j, name)
        if hh is not None:
            masks["recurrent"][name] = ((hh == 0) & (np.abs(h_prev) > 1e-4)).any(axis=0)
    for label, p in (("input", P_INPUT), ("recurrent", P_HIDDEN)):
        a, b = masks[label].get("a"), masks[label].get("b")
        if a is None or b is None or not a.any():
            j.fail(f"{label} masks fresh each forward call", f"no {label} mask could be read (see the cell's visible test)")
            continue
        prop.independent(j, f"{label} masks fresh each forward call", a, b, p, f"two forward calls' {label} masks",
                         "the same mask comes back on every forward call: draw the masks inside forward, not in __init__, "
                         "and do not reseed")
        prop.independent(j, f"{label} masks independent across the batch", a[0::2], a[1::2], p, "neighbouring sequences",
                         f"one {label} mask seems to be shared by every sequence of the batch: draw it with shape (B, size)")
        prop.independent(j, f"{label} masks independent across units", a[:, 0::2], a[:, 1::2], p, "neighbouring units",
                         "whole sequences are kept or dropped together: draw one value per unit")
    e1, e2 = _cell_array(j, "out_e1"), _cell_array(j, "out_e2")
    j.expect("evaluation is deterministic", e1 is not None and e2 is not None and np.array_equal(e1, e2),
             "two eval-mode forward calls on the same x gave different outputs: no randomness when self.training is False")


# ---------------------------------------------------------------------------------------------
# zoneout
# ---------------------------------------------------------------------------------------------
ZONE = (300, 160)  # (B, H)


def _same(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.isclose(out, ref, rtol=1e-6, atol=0)


def zone_inputs(rng, shape):
    """h_prev positive and h_new negative, both away from zero: each output entry shows where it came from."""
    return (rng.uniform(0.5, 2.0, size=shape).astype(np.float32), -rng.uniform(0.5, 2.0, size=shape).astype(np.float32))


def _zone_contract_plan(plan, rng):
    plan.inputs["a"], plan.inputs["b"] = zone_inputs(rng, ZONE)
    plan.inputs["a_s"], plan.inputs["b_s"] = zone_inputs(rng, (20, 30))
    plan.inputs["b_wide"] = -rng.uniform(0.5, 2.0, size=(20, 31)).astype(np.float32)
    plan.inputs["b_row"] = -rng.uniform(0.5, 2.0, size=(1, 30)).astype(np.float32)
    for p in RATES:
        plan.call(f"t{p}", tensor("a"), tensor("b"), p)
    plan.call("e0.3", tensor("a"), tensor("b"), 0.3, training=False)
    plan.call("t0", tensor("a_s"), tensor("b_s"), 0.0)
    plan.call("t1", tensor("a_s"), tensor("b_s"), 1.0)
    plan.call("neg", tensor("a_s"), tensor("b_s"), -0.1)
    plan.call("big", tensor("a_s"), tensor("b_s"), 1.2)
    plan.call("wide", tensor("a_s"), tensor("b_wide"), 0.3)
    plan.call("row", tensor("a_s"), tensor("b_row"), 0.3)
    plan.call("neg_eval", tensor("a_s"), tensor("b_s"), -0.1, training=False)
    plan.call("wide_eval", tensor("a_s"), tensor("b_wide"), 0.3, training=False)
    # any shape: a 3-D state, judged entry by entry like the 2-D ones
    plan.inputs["a3"], plan.inputs["b3"] = zone_inputs(rng, (6, 20, 30))
    plan.call("t3d", tensor("a3"), tensor("b3"), 0.3)


def _zone_contract_judge(j):
    a, b = j.input_array("a"), j.input_array("b")
    first = prop.tensor_out(j, "returns a tensor", f"t{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    if not j.expect("shape", first.shape == a.shape, f"expected the shape of h_prev, {a.shape}, got {first.shape}"):
        return
    prop.dtype_device(j, f"t{RATES[1]}", "torch.float32", j.plan.device)
    prop.cuda_note(j)
    for p in RATES:
        out = prop.input_like(j, f"each entry is h_prev or h_new at p={p}", f"t{p}", "a")
        if out is None:
            continue
        # Within float rounding, so that h_new + m * (h_prev - h_new) counts as a copy too.
        took_old, took_new = _same(out, a), _same(out, b)
        if (took_old | took_new).all():
            j.ok(f"each entry is h_prev or h_new at p={p}")
        elif (out == 0).any():
            j.fail(f"each entry is h_prev or h_new at p={p}",
                   f"{prop.pct(float((out == 0).mean()))} of entries are 0: zoneout never zeroes a unit, it KEEPS the previous "
                   "value h_prev (zeroing is dropout)")
        elif np.isclose(out, a / p, rtol=1e-5).any() or np.isclose(out, b / (1 - p), rtol=1e-5).any():
            j.fail(f"each entry is h_prev or h_new at p={p}",
                   "entries are scaled (h_prev / p or h_new / (1 - p)): zoneout copies values unchanged, no inverted scaling")
        else:
            j.fail(f"each entry is h_prev or h_new at p={p}",
                   "in training every entry must be exactly the h_prev entry or the h_new entry at that position")
        seen = float(took_old.mean())
        n = took_old.size
        interval = j.binomial(n, p)
        if int(took_old.sum()) in interval:
            j.ok(f"keeps h_prev with probability p={p}")
        else:
            hint = ""
            if abs(seen - (1 - p)) < 0.02:
                hint = ": h_prev and h_new look swapped (p is the probability of KEEPING the previous value h_prev)"
            j.fail(f"keeps h_prev with probability p={p}",
                   f"{prop.pct(seen)} of entries kept h_prev, expected about {prop.pct(p)} "
                   f"(accepted {interval.describe()}){hint}")
    ev = prop.input_like(j, "evaluation is p * h_prev + (1 - p) * h_new", "e0.3", "a", "with training=False the output")
    if ev is not None:
        name = "evaluation is p * h_prev + (1 - p) * h_new"
        if np.allclose(ev, 0.3 * a + 0.7 * b, rtol=1e-5, atol=1e-6):
            j.ok(name)
        elif np.array_equal(ev, b):
            j.fail(name, "with training=False the output is h_new: zoneout's evaluation output is the expectation "
                         "p * h_prev + (1 - p) * h_new, not the new state alone")
        elif np.allclose(ev, 0.7 * a + 0.3 * b, rtol=1e-5, atol=1e-6):
            j.fail(name, "with training=False the output is (1 - p) * h_prev + p * h_new: the weights look swapped; p "
                         "belongs to h_prev")
        elif (_same(ev, a) | _same(ev, b)).mean() > 0.5:
            j.fail(name, "with training=False the output still picks random entries: use the expectation "
                         "p * h_prev + (1 - p) * h_new at evaluation")
        else:
            j.fail(name, "with training=False the output should be p * h_prev + (1 - p) * h_new")
    a_s, b_s = j.input_array("a_s"), j.input_array("b_s")
    t0 = prop.input_like(j, "p=0 gives h_new", "t0", "b_s", "at p = 0 the output")
    if t0 is not None:
        j.expect("p=0 gives h_new", _same(t0, b_s).all(), "at p = 0 no unit keeps its old value: the output must equal h_new")
    t1 = prop.input_like(j, "p=1 gives h_prev", "t1", "a_s", "at p = 1 the output")
    if t1 is not None:
        if np.isnan(t1).any():
            j.fail("p=1 gives h_prev", "at p = 1 the output contains NaN (a division by 1 - p?): zoneout needs no scaling")
        else:
            j.expect("p=1 gives h_prev", _same(t1, a_s).all(), "at p = 1 every unit keeps its old value: the output must equal h_prev")
    a3 = j.input_array("a3")
    out3 = prop.input_like(j, "any shape: a 3-D state", "t3d", "a3")
    if out3 is not None:
        j.expect("any shape: a 3-D state", bool((_same(out3, a3) | _same(out3, j.input_array("b3"))).all()),
                 "with 3-D states of shape (6, 20, 30) every entry must be the h_prev entry or the h_new entry at that "
                 "position: zoneout works on any shape, entry by entry")
    prop.raises(j, "ValueError for p outside [0, 1]", ["neg", "big", "neg_eval"], "ValueError", [-0.1, 1.2, -0.1])
    bad = [s for cid, s in (("wide", "(20, 31)"), ("row", "(1, 30) (broadcastable)"),
                            ("wide_eval", "(20, 31) with training=False")) if not j.raised(cid, "ValueError")]
    j.expect("ValueError for shapes that differ", not bad,
             "h_prev has shape (20, 30); h_new must have the same shape, else raise ValueError (do not rely on broadcasting); "
             "no ValueError for h_new of shape " + ", ".join(bad))


def _zone_randomness_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["a"], plan.inputs["b"] = zone_inputs(rng, ZONE)
    plan.call("a", tensor("a"), tensor("b"), 0.3)
    plan.call("b", tensor("a"), tensor("b"), 0.3)
    plan.call("c", tensor("a"), tensor("b"), 0.8)
    plan.call("g1", tensor("a"), tensor("b"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("a"), tensor("b"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("a"), tensor("b"), 0.3, generator=generator(seed + 1))
    prop.global_seed(plan, ("s1", "s2"), tensor("a"), tensor("b"), 0.3)


def _zone_randomness_judge(j):
    a = j.input_array("a")
    masks = {}
    for cid in ("a", "b", "c", "g1", "g2", "g3"):
        out = prop.input_like(j, "returns a tensor", cid, "a")
        if out is not None:
            masks[cid] = _same(out, a)  # True where the old value was kept
    if len(masks) == 6:
        j.ok("returns a tensor")
    judge_mask_randomness(
        j, masks, "batch elements", "hidden units",
        "one zoneout mask seems to be shared by the whole batch: draw one decision per entry, with the full shape",
        "whole rows keep their old values together: draw one decision per entry, not one per batch element",
    )
    prop.judge_global_seed(j, ("s1", "s2"), a.shape, lambda out: _same(out, a))


def _zone_safety_plan(plan, rng):
    plan.inputs["a"], plan.inputs["b"] = zone_inputs(rng, (64, 80))
    plan.inputs["g"] = rng.normal(size=(64, 80)).astype(np.float32)
    a64, b64 = zone_inputs(rng, (30, 40))
    plan.inputs["a64"], plan.inputs["b64"] = a64.astype(np.float64), b64.astype(np.float64)
    plan.call("inplace", tensor("a"), tensor("b"), 0.3)
    plan.call("grad", tensor("a", requires_grad=True), tensor("b", requires_grad=True), 0.3, backward="g")
    plan.call("grad_eval", tensor("a", requires_grad=True), tensor("b", requires_grad=True), 0.3, training=False, backward="g")
    plan.call("f64", tensor("a64", "float64"), tensor("b64", "float64"), 0.3)


def _zone_safety_judge(j):
    a, b, g = (j.input_array(k) for k in ("a", "b", "g"))
    prop.unchanged_input(j, "inplace", "a", 0, name="inputs unchanged")
    if not j.problem("inplace") and j.array("inplace", "after/1") is not None:
        after = j.array("inplace", "after/1")
        if after.shape != b.shape or not np.array_equal(after, b):
            j.fail("inputs unchanged", "h_new was modified: build a new tensor (torch.where(keep, h_prev, h_new)) instead "
                                       "of writing into an input (h_prev[mask] = ..., h_new.copy_(...))")
    keep = None
    out = prop.input_like(j, "gradient to h_prev is mask * upstream", "grad", "a")
    if out is not None:
        keep = _same(out, a).astype(np.float32)
        judge_gradient(j, "grad", 0, lambda out: g * keep, "gradient to h_prev is mask * upstream",
                       "the gradient with respect to h_prev should be the upstream gradient where the old value was kept, 0 elsewhere")
        judge_gradient(j, "grad", 1, lambda out: g * (1 - keep), "gradient to h_new is (1 - mask) * upstream",
                       "the gradient with respect to h_new should be the upstream gradient where the new value was taken, 0 elsewhere")
    judge_gradient(j, "grad_eval", 0, lambda out: g * np.float32(0.3), "gradient at evaluation is p and 1 - p times upstream",
                   "at evaluation the output is p * h_prev + (1 - p) * h_new, so h_prev's gradient is p * upstream")
    judge_gradient(j, "grad_eval", 1, lambda out: g * np.float32(0.7), "gradient at evaluation is p and 1 - p times upstream",
                   "at evaluation the output is p * h_prev + (1 - p) * h_new, so h_new's gradient is (1 - p) * upstream")
    a64, b64 = j.input_array("a64"), j.input_array("b64")
    out64 = prop.tensor_out(j, "float64 preserved", "f64", a64.shape)
    if out64 is not None:
        got = prop.out_dtype(j, "f64")
        j.expect("float64 preserved", got == "torch.float64" and (np.isclose(out64, a64, rtol=1e-12, atol=0) | np.isclose(out64, b64, rtol=1e-12, atol=0)).all(),
                 f"float64 inputs must give a float64 output whose entries are exactly h_prev's or h_new's; got {got}")


# ---------------------------------------------------------------------------------------------
# Practice questions (the same five as in chapter 6, answers behind a toggle there)
# ---------------------------------------------------------------------------------------------
ANSWERS = {
    "q1": (["c"], "with a fresh mask at every step a stored value survives k steps only with probability q^k; "
                  "see the chapter's section on what goes wrong"),
    "q2": (["b"], "nn.LSTM's dropout acts only on the outputs of every layer but the last; with num_layers=1 it does nothing"),
    "q3": (["a"], "zoneout's p is the probability of keeping the previous value, and at evaluation it uses the expectation"),
    "q4": ([3200, "3200"], "the mask is shared by all T time steps, so one call makes one decision per (b, h): "
                           "B * H of them, whatever T is"),
    "q5": (["d"], "weight drop masks the hidden-to-hidden weight matrix once per forward pass, shared by every sequence and step"),
}


CHECKS = [
    Check("locked_dropout.contract", "locked_dropout", _locked_contract_plan, _locked_contract_judge,
          "same mask at every time step, kept values x / q, drop rate at p = 0.1, 0.3, 0.8, evaluation, p = 0 and 1, ValueError"),
    Check("locked_dropout.randomness", "locked_dropout", _locked_randomness_plan, _locked_randomness_judge,
          "masks independent across batch elements and hidden units, fresh each call, the generator honoured"),
    Check("locked_dropout.safety", "locked_dropout", _locked_safety_plan, _locked_safety_judge,
          "x untouched, gradients in training and evaluation, float64 kept"),
    Check("VariationalRNNCell.structure", "VariationalRNNCell", _cell_plan, _cell_structure_judge,
          "input and recurrent masks reused at every step, scaling, drop rates, the tanh update, eval = plain RNN, gradients"),
    Check("VariationalRNNCell.randomness", "VariationalRNNCell", _cell_plan, _cell_randomness_judge,
          "masks fresh each forward call, independent across the batch and units, deterministic evaluation"),
    Check("zoneout.contract", "zoneout", _zone_contract_plan, _zone_contract_judge,
          "entries copied from h_prev or h_new, keep rate p, evaluation expectation, p = 0 and 1, ValueError"),
    Check("zoneout.randomness", "zoneout", _zone_randomness_plan, _zone_randomness_judge,
          "decisions independent across batch elements and units, fresh each call, the generator honoured"),
    Check("zoneout.safety", "zoneout", _zone_safety_plan, _zone_safety_judge,
          "inputs untouched, gradients to both inputs in training and evaluation, float64 kept"),
] + [prop.answer_check(f"answer_{q}.rnn_dropout", f"answer_{q}", accepted, why) for q, (accepted, why) in ANSWERS.items()]
