"""Checks for assignment 02_bernoulli_masks: ``bernoulli_mask`` and ``dropout_standard``.

p is the drop probability, q = 1 - p the keep probability. Statistical properties are binomial tests
(``Judge.binomial``) or exact conditional tests of independence (``properties.agreement_interval``), each with
false-failure probability 1e-7, at most ten per check (``autograde.stats``).

Contract clause (the task text above each graded function) -> check.property that exercises it.

``bernoulli_mask(shape, p, generator=None, device=None)``
- a torch.float32 tensor -> bernoulli_mask.contract."dtype", "binary at p=..."
- of the given shape, given as a tuple, a list or a torch.Size -> bernoulli_mask.contract."shape" (3 shapes)
- on device; None means the CPU -> bernoulli_mask.contract."device" (CUDA only: "cuda" skipped with a note on a
  CPU-only machine), "default device"
- each entry 0.0 with probability p, 1.0 otherwise -> bernoulli_mask.contract."binary at p=...", "drop rate at
  p=..." (p = 0.1, 0.3, 0.8)
- independently of every other entry -> bernoulli_mask.randomness."rows independent at p=...", "columns
  independent at p=..." (p = 0.3, 0.8)
- a fresh mask on every call -> bernoulli_mask.randomness."fresh mask each call"
- random numbers from generator when given (seeded alike, the same mask) -> bernoulli_mask.randomness."generator
  honoured", "generator seed matters"
- otherwise from PyTorch's global random state -> bernoulli_mask.randomness."global random state without a
  generator" (two calls after the same torch.manual_seed)
- p = 0 keeps everything, p = 1 drops everything -> bernoulli_mask.contract."p=0 keeps everything", "p=1 drops
  everything"
- ValueError outside [0, 1] -> bernoulli_mask.contract."ValueError outside [0, 1]"
- fast: no Python loop over entries -> bernoulli_mask.speed."speed" (against torch's bernoulli_, timed by the
  grader)

``dropout_standard(x, p, training=True, generator=None)``
- training: x * m with m a Bernoulli mask of x's shape; survivors unchanged, dropped ones zero ->
  dropout_standard.contract."shape", "kept values unchanged at p=...", "drop rate at p=..."; the mask's
  independence and freshness -> dropout_standard.safety."rows/columns independent at p=...", "fresh mask each
  call"
- evaluation: x * q, no randomness -> dropout_standard.contract."evaluation scales by q"
- x's dtype and device; float64 in, float64 out with survivors exactly x -> dropout_standard.contract."dtype",
  "device" (CUDA only); dropout_standard.safety."float64 preserved"
- x never modified -> dropout_standard.safety."input unchanged"
- gradient m * upstream in training, q * upstream at evaluation -> dropout_standard.safety."gradient in training
  is mask * upstream", "gradient at evaluation is q * upstream"
- at p = 1 the output need not be connected to x; if it is, its gradient is zero, never NaN ->
  dropout_standard.safety."gradient at p=1 is zero or absent"
- p = 1 gives zeros, never NaN, in training and evaluation -> dropout_standard.contract."p=1 gives zeros in
  training", "p=1 gives zeros at evaluation"; (p = 0 -> "p=0 is the identity")
- ValueError outside [0, 1], in training and evaluation -> dropout_standard.contract."ValueError outside [0, 1]"
- generator passed on to the mask; without one the global random state -> dropout_standard.safety."generator
  honoured", "generator seed matters", "global random state without a generator"
- fast on a million entries -> dropout_standard.speed."speed" (against torch.nn.functional.dropout)
"""

from __future__ import annotations

import numpy as np

from ..probe import generator, plan_device, size, tensor
from . import Check
from . import properties as prop
from .properties import judge_gradient, judge_randomness  # noqa: F401  (other chapters import them from here too)

RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 a swapped keep/drop probability would be invisible
BIG = (1000, 1000)
WIDE = (512, 2048)


# ---------------------------------------------------------------------------------------------
# bernoulli_mask
# ---------------------------------------------------------------------------------------------
def _mask_contract_plan(plan, rng):
    for p in RATES:
        plan.call(f"r{p}", list(BIG), p, device=plan_device())
    plan.call("p0", [300, 300], 0.0, device=plan_device())
    plan.call("p1", [300, 300], 1.0, device=plan_device())
    plan.call("neg", [10], -0.1, device=plan_device())
    plan.call("big", [10], 1.5, device=plan_device())
    plan.call("shape3", [4, 5, 6], 0.3, device=plan_device())
    plan.call("size", size(7, 3), 0.3, device=plan_device())
    plan.call("default", [3, 4], 0.3)


def _is_binary(j, name, cid, arr) -> bool:
    ok = np.isin(arr, (0.0, 1.0)).all()
    return j.expect(name, ok, f"entries must be 0.0 or 1.0 only; saw values such as {np.unique(arr)[:5]}")


F32 = "torch.float32"


def _mask_contract_judge(j):
    shapes_ok = []
    for cid, shape in (("shape3", (4, 5, 6)), ("size", (7, 3)), (f"r{RATES[0]}", BIG)):
        arr = None if j.problem(cid) else j.array(cid)
        shapes_ok.append(arr is not None and arr.shape == shape)
    first = prop.tensor_out(j, "returns a tensor", f"r{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    j.expect("shape", all(shapes_ok) and first.shape == BIG,
             "the mask must have exactly the requested shape (tuples, lists and torch.Size)")
    prop.dtype_device(j, f"r{RATES[1]}", F32, j.plan.device)
    default = None if j.problem("default") else j.array("default")
    where = prop.out_device(j, "default")
    seen = "no tensor" if default is None else f"shape {default.shape} on {where}"
    j.expect("default device", default is not None and default.shape == (3, 4) and where == "cpu",
             f"with device=None the mask belongs on the CPU, with the requested shape (3, 4); got {seen}")
    prop.cuda_note(j)
    for p in RATES:
        arr = prop.tensor_out(j, f"drop rate at p={p}", f"r{p}", BIG, F32, what="the mask")
        if arr is not None and _is_binary(j, f"binary at p={p}", f"r{p}", arr):
            prop.drop_rate(j, f"drop rate at p={p}", arr == 0.0, p)
    ones = prop.tensor_out(j, "p=0 keeps everything", "p0", (300, 300), F32, what="the mask")
    if ones is not None:
        j.expect("p=0 keeps everything", (ones == 1.0).all(), "at p = 0 every entry must be 1.0")
    zeros = prop.tensor_out(j, "p=1 drops everything", "p1", (300, 300), F32, what="the mask")
    if zeros is not None:
        j.expect("p=1 drops everything", (zeros == 0.0).all(), "at p = 1 every entry must be 0.0")
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big"], "ValueError", [-0.1, 1.5])


def _mask_randomness_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.call("a", list(WIDE), 0.3, device=plan_device())
    plan.call("b", list(WIDE), 0.3, device=plan_device())
    plan.call("c", list(WIDE), 0.8, device=plan_device())
    plan.call("g1", list(WIDE), 0.3, generator=generator(seed), device=plan_device())
    plan.call("g2", list(WIDE), 0.3, generator=generator(seed), device=plan_device())
    plan.call("g3", list(WIDE), 0.3, generator=generator(seed + 1), device=plan_device())
    prop.global_seed(plan, ("s1", "s2"), list(WIDE), 0.3, device=plan_device())


def _mask_randomness_judge(j):
    judge_randomness(j, ("a", "b"), "c", ("g1", "g2", "g3"), shape=WIDE, global_ids=("s1", "s2"))


def _mask_speed_plan(plan, rng):
    plan.call("t", [prop.SPEED_ELEMENTS], 0.3, device=plan_device(), time_repeats=prop.SPEED_REPEATS)


def _mask_speed_reference(plan):
    import torch

    return lambda: torch.empty(prop.SPEED_ELEMENTS, device=plan.device).bernoulli_(0.7)


def _mask_speed_judge(j):
    prop.speed(j, "t", "torch.Tensor.bernoulli_")


# ---------------------------------------------------------------------------------------------
# dropout_standard
# ---------------------------------------------------------------------------------------------
def _std_contract_plan(plan, rng):
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


def _std_contract_judge(j):
    x = j.input_array("x")
    xs = j.input_array("x_small")
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
        dropped = out == 0
        kept = ~dropped
        if np.array_equal(out[kept], x[kept]):
            j.ok(f"kept values unchanged at p={p}")
        elif np.allclose(out[kept], x[kept] / (1 - p), rtol=1e-5):
            j.fail(
                f"kept values unchanged at p={p}",
                "kept values equal x / (1 - p): that is inverted dropout; classic dropout keeps x "
                "unchanged in training and multiplies by q = 1 - p at evaluation",
            )
        elif np.allclose(out[kept], x[kept] * (1 - p), rtol=1e-5):
            j.fail(f"kept values unchanged at p={p}", "kept values equal x * (1 - p): in training classic dropout keeps x as it is; scaling by q belongs to evaluation")
        else:
            j.fail(f"kept values unchanged at p={p}", "entries that survive must equal x exactly (training output is x * m with m in {0, 1})")
        prop.drop_rate(j, f"drop rate at p={p}", dropped, p)
    ev = prop.input_like(j, "evaluation scales by q", "e0.3", "x", "with training=False the output")
    if ev is not None:
        if np.allclose(ev, x * 0.7, rtol=1e-6, atol=0):
            j.ok("evaluation scales by q")
        elif (ev == 0).any():
            j.fail("evaluation scales by q", f"{pct0(ev)} of entries were zeroed with training=False: dropout must not drop at evaluation")
        elif np.array_equal(ev, x):
            j.fail("evaluation scales by q", "with training=False the output equals x: classic dropout must scale by q = 1 - p at evaluation")
        elif np.allclose(ev, x * 0.3, rtol=1e-6):
            j.fail("evaluation scales by q", "with training=False the output is x * p: scale by the keep probability q = 1 - p, not by p")
        elif np.allclose(ev, x / 0.7, rtol=1e-6):
            j.fail("evaluation scales by q", "with training=False the output is x / q: classic dropout multiplies by q at evaluation")
        else:
            j.fail("evaluation scales by q", "with training=False the output should be x * (1 - p)")
    t0 = prop.input_like(j, "p=0 is the identity", "t0", "x_small", "at p = 0 the output")
    if t0 is not None:
        j.expect("p=0 is the identity", np.array_equal(t0, xs), "at p = 0 nothing is dropped: the output must equal x")
    for cid, name in (("t1", "p=1 gives zeros in training"), ("e1", "p=1 gives zeros at evaluation")):
        out = prop.input_like(j, name, cid, "x_small", "at p = 1 the output")
        if out is None:
            continue
        if np.isnan(out).any():
            j.fail(name, "at p = 1 the output contains NaN (a division by q = 0?): it must be all zeros")
        else:
            j.expect(name, (out == 0).all(), "at p = 1 everything is dropped: the output must be all zeros")
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big", "neg_eval"], "ValueError", [-0.1, 1.2, -0.1])


def pct0(arr) -> str:
    return prop.pct(float((arr == 0).mean()))


def _std_safety_plan(plan, rng):
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


def _std_safety_judge(j):
    prop.unchanged_input(j, "inplace", "x")
    judge_gradient(j, "grad", lambda out, g: g * (out != 0), "gradient in training is mask * upstream")
    judge_gradient(j, "grad_eval", lambda out, g: g * np.float32(0.7), "gradient at evaluation is q * upstream")
    prop.judge_gradient_p1(j, "grad_p1")
    x64 = j.input_array("x64")
    out64 = prop.tensor_out(j, "float64 preserved", "f64", x64.shape)
    if out64 is not None:
        got = prop.out_dtype(j, "f64")
        j.expect(
            "float64 preserved",
            got == "torch.float64" and np.array_equal(out64[out64 != 0], x64[out64 != 0]),
            f"a float64 input must give a float64 output with exact kept values; got {got} "
            "(is the mask created as float32 and the product cast?)",
        )
    judge_randomness(j, ("a", "b"), "c", ("g1", "g2", "g3"), shape=WIDE, global_ids=("s1", "s2"))


def _std_speed_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, (prop.SPEED_ELEMENTS,))
    plan.call("t", tensor("x"), 0.3, time_repeats=prop.SPEED_REPEATS)


def _std_speed_reference(plan):
    import torch
    import torch.nn.functional as F

    xt = torch.tensor(plan.inputs["x"], device=plan.device)
    return lambda: F.dropout(xt, 0.3, training=True)


def _std_speed_judge(j):
    prop.speed(j, "t", "torch.nn.functional.dropout")


CHECKS = [
    Check("bernoulli_mask.contract", "bernoulli_mask", _mask_contract_plan, _mask_contract_judge,
          "shape, dtype, values in {0, 1}, drop rate at p = 0.1, 0.3, 0.8, p = 0 and 1, ValueError"),
    Check("bernoulli_mask.randomness", "bernoulli_mask", _mask_randomness_plan, _mask_randomness_judge,
          "independent rows and columns, a fresh mask each call, the generator honoured"),
    Check("bernoulli_mask.speed", "bernoulli_mask", _mask_speed_plan, _mask_speed_judge,
          "a million entries within a stated factor of torch's bernoulli_", timed=("t",),
          reference=_mask_speed_reference),
    Check("dropout_standard.contract", "dropout_standard", _std_contract_plan, _std_contract_judge,
          "kept values exact, drop rate, evaluation scales by q, p = 0 and 1, ValueError"),
    Check("dropout_standard.safety", "dropout_standard", _std_safety_plan, _std_safety_judge,
          "input untouched, gradients, float64, independent and fresh masks, the generator honoured"),
    Check("dropout_standard.speed", "dropout_standard", _std_speed_plan, _std_speed_judge,
          "a million elements within a stated factor of torch.nn.functional.dropout", timed=("t",),
          reference=_std_speed_reference),
]
