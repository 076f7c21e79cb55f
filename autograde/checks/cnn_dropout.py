"""Checks for assignment 05_cnn_dropout: ``dropout2d``, ``dropblock2d`` and the practice questions.

p is the drop probability, q = 1 - p the keep probability; x has shape (N, C, H, W).

Contract clause (the task text above each graded function) -> check.property that exercises it.

``dropout2d(x, p, training=True, generator=None)``
- ValueError if x is not 4-D or p is outside [0, 1], in training and in evaluation -> dropout2d.contract.
  "ValueError unless x is 4-D" (3-D, 2-D, 5-D, 3-D at evaluation), "ValueError outside [0, 1]"
- one Bernoulli draw per (sample, channel), the same decision over H x W -> dropout2d.contract."one draw per
  (sample, channel) at p=..."; dropout2d.sharing."one draw per (sample, channel) at p=..."
- kept with probability q -> dropout2d.contract."drop rate per (sample, channel) at p=..." (p = 0.1, 0.3, 0.8)
- independent across samples, channels and calls -> dropout2d.sharing."samples independent at p=...", "channels
  independent at p=..."; dropout2d.safety."fresh mask each call"
- kept maps x / q (relative error 1e-5), dropped maps 0 -> dropout2d.contract."kept maps are x / q at p=..."
- evaluation returns x -> dropout2d.contract."evaluation returns x"
- p = 0 returns x, p = 1 zeros (never NaN) -> dropout2d.contract."p=0 is the identity", "p=1 gives zeros"
- x's dtype and device; float64 with kept maps x / q to 1e-12 -> dropout2d.contract."dtype", "device" (CUDA only:
  "cuda" skipped with a note on a CPU-only machine); dropout2d.safety."float64 preserved"
- x never modified -> dropout2d.safety."input unchanged"
- gradient m / q * upstream; at p = 1 zero or none, never NaN -> dropout2d.safety."gradient in training is m / q *
  upstream", "gradient at evaluation is upstream", "gradient at p=1 is zero or absent"
- generator when given, else PyTorch's global random state -> dropout2d.safety."generator honoured", "generator
  seed matters", "global random state without a generator"

``dropblock2d(x, p, block_size, training=True, generator=None)`` (b = block_size)
- every valid corner a seed with probability gamma = p H W / (b^2 (H - b + 1)(W - b + 1)) -> dropblock2d.blocks.
  "seed rate gamma at p=...", "dropped fraction close to p at p=..." (p = 0.1, 0.3)
- independently of every other corner, map and call -> dropblock2d.safety."maps independent across samples",
  "maps independent across channels", "fresh mask each call" (corners within a map: "seed rate gamma", whose
  lattice units are independent only if the corners are)
- a seed drops the b x b square it starts; every block inside the map -> dropblock2d.blocks."blocks are 3 x 3
  squares at p=...", "smallest dropped region is block_size x block_size", "blocks are 5 x 5 squares on 12 x 20
  maps"
- every valid corner, the last row and column included, can seed a block (so every position can be dropped) ->
  dropblock2d.blocks."every position can be dropped"
- kept units multiplied by one factor x.numel() / (number kept) -> dropblock2d.contract."one scale for all kept
  units at p=..."
- zeros when no unit is kept (never NaN) -> dropblock2d.contract."zeros when nothing is kept"
- evaluation returns x; p = 0 returns x; p = 1 returns zeros -> dropblock2d.contract."evaluation returns x",
  "p=0 is the identity", "p=1 gives zeros"
- block_size = 1 is element-wise dropout with gamma = p -> dropblock2d.contract."block_size=1 drop rate at p=0.3",
  "block_size=1 units independent"
- ValueError for p outside [0, 1], a non-integer block_size (2.5), block_size < 1 or > min(H, W), x not 4-D ->
  dropblock2d.contract."ValueError for bad arguments"; and at evaluation -> "ValueError for bad arguments at
  evaluation"
- x's dtype and device; float64 scaled to 1e-12 -> dropblock2d.contract."dtype", "device" (CUDA only);
  dropblock2d.safety."float64 preserved"
- x never modified -> dropblock2d.safety."input unchanged"
- gradient: upstream masked and scaled like the forward pass; at p = 1 zero or none -> dropblock2d.safety.
  "gradient in training is m * scale * upstream", "gradient at evaluation is upstream", "gradient at p=1 is zero
  or absent"
- generator when given, else PyTorch's global random state -> dropblock2d.safety."generator honoured",
  "generator seed matters", "global random state without a generator"

Practice questions -> cnn_dropout.qN."answer" (letters in any case and spacing; numbers of any real type within
1e-6, relative above 1: ``properties.answer_check``).

Statistics. Every binomial test goes through ``Judge.binomial`` (false failure 1e-7 each). DropBlock's
units are not independent within a map, so two of its properties need more care:

- *Seed rate.* An interior unit (one that b^2 corners can reach) is dropped with probability
  r = 1 - (1 - gamma)^(b^2). Units at least b apart in a map depend on disjoint sets of seeds, so the
  units on a lattice of step b inside the interior are independent Bernoulli(r) draws, and so are
  different maps: their count is exactly binomial.
- *Dropped fraction near p.* Because blocks overlap, the expected dropped fraction E is below p:
  E = mean over units of 1 - (1 - gamma)^k(i, j), with k(i, j) the number of corners that reach unit
  (i, j). For 16 x 16 maps and b = 3, E = 0.0952 at p = 0.1 and 0.2590 at p = 0.3, so |E - p| <= 0.041.
  The check computes E exactly and accepts observed fractions within a noise bound t of it. The observed
  fraction averages n = 2048 independent per-map fractions, each in [0, 1] with variance at most
  (2b - 1)^2 / (4 H W) (a unit's indicator covaries only with the (2b - 1)^2 units whose seed windows
  overlap its own, and no covariance exceeds 1/4). Bernstein's inequality gives t = 0.0229 at
  probability 1 - 1e-7. Every accepted fraction is therefore within 0.041 + 0.023 < 0.065 of p, and a
  gamma off by the valid-region factor (E = 0.205 at p = 0.3) is rejected (at p = 0.1 that mistake is
  caught by the seed-rate test instead). These Bernstein tests count
  against the check's budget of ten statistical tests like binomial ones.
- *Shared maps.* Both bounds need independent maps. An output whose channel maps are identical within every
  sample (or whose samples are identical) is one draw repeated, so ``independent_maps`` keeps one map per
  group; the sharing is the mistake dropblock2d.safety names, and the rates are judged on what was sampled.
- *Coverage.* A position reached by k valid corners stays kept in M independent maps with probability
  (1 - gamma)^(k M); summed over the positions (union bound) that is about 1e-52 for the blocks check's 2 x 2048
  maps. The property is skipped, not failed, when that bound exceeds 1e-7 (too few independent maps).
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from ..probe import generator, tensor
from . import Check
from . import properties as prop

F32 = "torch.float32"
RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 a swapped keep/drop probability would be invisible

# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def _eval_identity(j, name, ev, x) -> None:
    if ev is None:
        return
    if ev.shape != x.shape:
        j.fail(name, f"with training=False the output has shape {ev.shape}, expected {x.shape}")
    elif np.array_equal(ev, x):
        j.ok(name)
    elif (ev == 0).any():
        j.fail(name, f"{prop.pct(float((ev == 0).mean()))} of entries were zeroed with training=False: dropout must not drop at evaluation")
    elif np.allclose(ev, x * 0.7, rtol=1e-5):
        j.fail(name, "with training=False the output is x * (1 - p): inverted dropout returns x unchanged at evaluation (the 1/q scaling happened in training)")
    elif np.allclose(ev, x / 0.7, rtol=1e-5):
        j.fail(name, "with training=False the output is x / (1 - p): at evaluation return x unchanged")
    else:
        j.fail(name, "with training=False the output must equal x exactly")


def _zeros_at_p1(j, name, out) -> None:
    if out is None:
        return
    if np.isnan(out).any():
        j.fail(name, "at p = 1 the output contains NaN (a division by q = 0, or by a kept count of 0?): it must be all zeros")
    else:
        j.expect(name, (out == 0).all(), "at p = 1 everything is dropped: the output must be all zeros")


def _raises(j, name, cases) -> None:
    """``cases``: (call id, description of the bad argument)."""
    missing = [(cid, what) for cid, what in cases if not j.raised(cid, "ValueError")]
    if not missing:
        j.ok(name)
        return
    j.fail(name, "expected ValueError; saw " + "; ".join(f"{what}: {prop.raised_what(j, cid)}" for cid, what in missing))


def _float64(j, cid, x64, expected_fn, rule) -> None:
    """A float64 input gives a float64 output whose kept values follow ``expected_fn(out, x)`` to float64 precision."""
    out = prop.tensor_out(j, "float64 preserved", cid, x64.shape)
    if out is None:
        return
    got = prop.out_dtype(j, cid)
    kept = out != 0
    j.expect(
        "float64 preserved",
        got == "torch.float64" and kept.any() and bool(np.allclose(out[kept], expected_fn(out, x64)[kept], rtol=1e-12, atol=0)),
        f"a float64 input must give a float64 output with kept values {rule} to float64 precision; got {got} (is the "
        "mask created as float32 and the product cast, or the factor rounded to float32?)",
    )


def _generator(j, ids, to_mask, p, mistake_ignored, shape) -> None:
    g1, g2, g3 = (prop.tensor_out(j, "generator honoured", cid, shape) for cid in ids)
    if g1 is None or g2 is None or g3 is None:
        return
    if j.expect(
        "generator honoured",
        np.array_equal(g1, g2),
        "two calls with generators seeded alike gave different masks: draw from the generator argument "
        "(torch.rand(..., generator=generator)) instead of the global random state",
    ):
        a, b = to_mask(g1), to_mask(g3)
        prop.independent(j, "generator seed matters", a, b, p, "masks from differently seeded generators", mistake_ignored)


# ---------------------------------------------------------------------------------------------
# dropout2d
# ---------------------------------------------------------------------------------------------
D2_SHAPE = (256, 32, 3, 7)  # H != W, so a transposed or channels-last mask shows; 8192 (n, c) slices
D2_WIDE = (512, 64, 2, 3)  # 32768 slices: pairs of neighbouring samples and channels for independence
D2_SAFE = (256, 32, 3, 4)


def slice_structure(dropped: np.ndarray) -> tuple[bool, float]:
    """Whether every (n, c) slice is all dropped or all kept, and the fraction of mixed slices."""
    any_ = dropped.any(axis=(2, 3))
    all_ = dropped.all(axis=(2, 3))
    mixed = any_ != all_
    return (not mixed.any()), float(mixed.mean())


def _structure_mistake(dropped: np.ndarray) -> str:
    """Name the likely mistake for a mask that is not constant on (n, c) slices."""
    def constant_over(axes):
        return bool((dropped.any(axis=axes) == dropped.all(axis=axes)).all())

    if constant_over((1, 2)):
        return ("the mask is constant over the channel and height axes but changes along the last axis: the last axis "
                "seems to be treated as channels (channels-last, (N, H, W, C)); PyTorch's layout is (N, C, H, W), "
                "so draw a mask of shape (N, C, 1, 1)")
    if constant_over((1,)):
        return ("the same spatial mask is used for every channel: spatial dropout drops whole channels, so draw one "
                "value per (sample, channel), mask shape (N, C, 1, 1), not (N, 1, H, W)")
    return ("units inside one channel's map are dropped independently (element-wise dropout): draw one value per "
            "(sample, channel), mask shape (N, C, 1, 1), and broadcast it over height and width")


def judge_sharing(j, name, dropped) -> bool:
    ok, mixed = slice_structure(dropped)
    if ok:
        j.ok(name)
        return True
    j.fail(name, f"{prop.pct(mixed)} of the (sample, channel) maps are partly dropped, partly kept; every map must be "
                 f"all kept or all dropped: {_structure_mistake(dropped)}")
    return False


def _d2_contract_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, D2_SHAPE)
    plan.inputs["x_small"] = prop.nonzero_input(rng, (8, 6, 5, 4))
    plan.inputs["x3"] = prop.nonzero_input(rng, (6, 5, 4))
    plan.inputs["x2"] = prop.nonzero_input(rng, (6, 5))
    plan.inputs["x5"] = prop.nonzero_input(rng, (2, 3, 4, 5, 6))
    for p in RATES:
        plan.call(f"t{p}", tensor("x"), p)
    plan.call("e0.3", tensor("x"), 0.3, training=False)
    plan.call("p0", tensor("x_small"), 0.0)
    plan.call("p1", tensor("x_small"), 1.0)
    plan.call("neg", tensor("x_small"), -0.1)
    plan.call("big", tensor("x_small"), 1.5)
    plan.call("neg_eval", tensor("x_small"), -0.1, training=False)
    plan.call("x3", tensor("x3"), 0.3)
    plan.call("x2", tensor("x2"), 0.3)
    plan.call("x5", tensor("x5"), 0.3)
    plan.call("x3_eval", tensor("x3"), 0.3, training=False)


def judge_inverted_values(j, name, out, x, p) -> None:
    kept = out != 0
    q = 1 - p
    if np.allclose(out[kept], x[kept] / q, rtol=1e-5, atol=0):
        j.ok(name)
    elif np.array_equal(out[kept], x[kept]):
        j.fail(name, f"kept values equal x: inverted dropout scales the kept maps by 1/q = 1/(1 - p) = {1 / q:.4g} in training (missing scaling)")
    elif np.allclose(out[kept], x[kept] * q, rtol=1e-5):
        j.fail(name, "kept values equal x * (1 - p): divide by q = 1 - p instead of multiplying")
    elif np.allclose(out[kept], x[kept] / p, rtol=1e-5):
        j.fail(name, "kept values equal x / p: scale by 1/q with q = 1 - p, the keep probability")
    else:
        j.fail(name, "kept values must equal x / (1 - p) exactly (inverted dropout)")


def _d2_contract_judge(j):
    x = j.input_array("x")
    first = prop.tensor_out(j, "returns a tensor", f"t{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    if not j.expect("shape", first.shape == x.shape, f"expected shape {x.shape}, got {first.shape}"):
        return
    prop.dtype_device(j, f"t{RATES[1]}", F32, j.plan.device)
    prop.cuda_note(j)
    for p in RATES:
        out = prop.input_like(j, f"kept maps are x / q at p={p}", f"t{p}", "x")
        if out is None:
            continue
        judge_inverted_values(j, f"kept maps are x / q at p={p}", out, x, p)
        dropped = out == 0
        if judge_sharing(j, f"one draw per (sample, channel) at p={p}", dropped):
            prop.drop_rate(j, f"drop rate per (sample, channel) at p={p}", dropped.all(axis=(2, 3)), p)
        else:
            j.skip(f"drop rate per (sample, channel) at p={p}", "not judged: the maps are not dropped whole (see above)")
    _eval_identity(j, "evaluation returns x", prop.input_like(j, "evaluation returns x", "e0.3", "x", "with training=False the output"), x)
    p0 = prop.input_like(j, "p=0 is the identity", "p0", "x_small", "at p = 0 the output")
    if p0 is not None:
        j.expect("p=0 is the identity", np.array_equal(p0, j.input_array("x_small")), "at p = 0 nothing is dropped and q = 1: the output must equal x")
    _zeros_at_p1(j, "p=1 gives zeros", prop.input_like(j, "p=1 gives zeros", "p1", "x_small", "at p = 1 the output"))
    _raises(j, "ValueError outside [0, 1]", [("neg", "p = -0.1"), ("big", "p = 1.5"), ("neg_eval", "p = -0.1 with training=False")])
    cases = (("x3", "a 3-D x"), ("x2", "a 2-D x"), ("x5", "a 5-D x"), ("x3_eval", "a 3-D x with training=False"))
    missing = [what for cid, what in cases if not j.raised(cid, "ValueError")]
    if not missing:
        j.ok("ValueError unless x is 4-D")
    else:
        j.fail("ValueError unless x is 4-D", "expected ValueError for " + ", ".join(missing) + ": dropout2d "
               "needs (N, C, H, W); accepting a 3-D input silently is the nn.Dropout2d pitfall (it treats (C, H, W) as "
               "(N, C, L) and drops rows), so check x.dim() == 4")


def _d2_sharing_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, D2_WIDE)
    plan.call("a", tensor("x"), 0.3)
    plan.call("c", tensor("x"), 0.8)


def slice_mask(out: np.ndarray) -> np.ndarray:
    """Dropped (sample, channel) maps: True where the whole map is zero."""
    return (out == 0).all(axis=(2, 3))


def _d2_sharing_judge(j):
    for p, cid in ((0.3, "a"), (0.8, "c")):
        out = prop.input_like(j, f"one draw per (sample, channel) at p={p}", cid, "x")
        if out is None:
            continue
        if not judge_sharing(j, f"one draw per (sample, channel) at p={p}", out == 0):
            continue
        m = slice_mask(out)
        prop.independent(
            j, f"samples independent at p={p}", m[0::2], m[1::2], p, "the channel masks of neighbouring samples",
            "every sample seems to share one channel mask: draw the mask with shape (N, C, 1, 1), not (1, C, 1, 1)",
        )
        prop.independent(
            j, f"channels independent at p={p}", m[:, 0::2], m[:, 1::2], p, "the masks of neighbouring channels",
            "whole samples are kept or dropped together: draw one value per (sample, channel), mask shape "
            "(N, C, 1, 1), not (N, 1, 1, 1)",
        )


def _d2_safety_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["x"] = prop.nonzero_input(rng, D2_SAFE)
    plan.inputs["g"] = rng.normal(size=D2_SAFE).astype(np.float32)
    plan.inputs["x64"] = prop.nonzero_input(rng, (16, 8, 3, 4)).astype(np.float64)
    plan.call("inplace", tensor("x"), 0.3)
    plan.call("grad", tensor("x", requires_grad=True), 0.3, backward="g")
    plan.call("grad_eval", tensor("x", requires_grad=True), 0.3, training=False, backward="g")
    plan.call("grad_p1", tensor("x", requires_grad=True), 1.0, backward="g")
    plan.call("f64", tensor("x64", "float64"), 0.3)
    plan.call("a", tensor("x"), 0.3)
    plan.call("b", tensor("x"), 0.3)
    plan.call("g1", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, generator=generator(seed + 1))
    prop.global_seed(plan, ("s1", "s2"), tensor("x"), 0.3)


def _d2_safety_judge(j):
    prop.unchanged_input(j, "inplace", "x")
    prop.judge_gradient(j, "grad", lambda out, g: g * (out != 0) / np.float32(0.7), "gradient in training is m / q * upstream")
    prop.judge_gradient(j, "grad_eval", lambda out, g: g, "gradient at evaluation is upstream")
    prop.judge_gradient_p1(j, "grad_p1")
    _float64(j, "f64", j.input_array("x64"), lambda out, x: x / 0.7, "x / q")
    shape = j.input_array("x").shape
    prop.judge_global_seed(j, ("s1", "s2"), shape)
    a = prop.tensor_out(j, "fresh mask each call", "a", shape)
    b = prop.tensor_out(j, "fresh mask each call", "b", shape)
    if a is None or b is None:
        return
    if not (slice_structure(a == 0)[0] and slice_structure(b == 0)[0]):
        why = "not judged: whole (sample, channel) maps are not dropped (see dropout2d.contract)"
        j.skip("fresh mask each call", why)
        j.skip("generator honoured", why)
        return
    prop.independent(
        j, "fresh mask each call", slice_mask(a), slice_mask(b), 0.3, "two calls' channel masks",
        "the same mask comes back every call (is a seed set inside the function, or a mask cached?)",
    )
    _generator(j, ("g1", "g2", "g3"), slice_mask, 0.3, "the generator's seed seems to be ignored", shape)


# ---------------------------------------------------------------------------------------------
# dropblock2d
# ---------------------------------------------------------------------------------------------
DB_CONTRACT = (32, 16, 16, 16)
DB_BIG = (8, 256, 16, 16)  # 2048 maps: the Bernstein bound in the module docstring is for that many
DB_RECT = (8, 16, 12, 20)  # non-square maps, block_size 5: H and W must not be confused
DB_WIDE = (32, 32, 16, 16)


def gamma(p: float, b: int, h: int, w: int) -> float:
    """The paper's seed rate: p * H * W / (b^2 (H - b + 1)(W - b + 1))."""
    return p * h * w / (b * b * (h - b + 1) * (w - b + 1))


def coverage(b: int, h: int, w: int) -> np.ndarray:
    """How many valid top-left corners reach each unit of an H x W map."""
    rows = np.array([min(i, h - b) - max(0, i - b + 1) + 1 for i in range(h)])
    cols = np.array([min(i, w - b) - max(0, i - b + 1) + 1 for i in range(w)])
    return np.outer(rows, cols)


def expected_fraction(p: float, b: int, h: int, w: int) -> float:
    """The exact expected dropped fraction of the paper's sampling (below p because blocks overlap)."""
    return float(np.mean(1 - (1 - gamma(p, b, h, w)) ** coverage(b, h, w)))


def bernstein_halfwidth(n: int, variance: float, alpha: float = stats.ALPHA_PER_TEST) -> float:
    """t with P(|mean - E| >= t) <= alpha for n iid values in [0, 1] with the given variance bound."""
    log_term = math.log(2 / alpha)
    a = 2 * log_term / 3
    return (a + math.sqrt(a * a + 8 * n * log_term * variance)) / (2 * n)


def lattice(dropped: np.ndarray, b: int) -> np.ndarray:
    """Interior units b apart: independent Bernoulli(1 - (1 - gamma)^(b^2)) draws under the paper's sampling."""
    h, w = dropped.shape[-2:]
    return dropped[..., b - 1 : h - b + 1 : b, b - 1 : w - b + 1 : b]


def opening(dropped: np.ndarray, b: int) -> np.ndarray:
    """The union of all b x b squares that lie inside both the map and the dropped set."""
    from scipy import ndimage

    square = np.ones((1, 1, b, b), dtype=bool)
    return ndimage.binary_dilation(ndimage.binary_erosion(dropped, square, border_value=0), square)


def smallest_region(dropped: np.ndarray, max_maps: int = 256) -> tuple[int, int] | None:
    """The smallest bounding box (height, width) of a connected dropped region (4-connected within a map),
    or None when no map holds a dropped unit.

    Only the first ``max_maps`` maps that hold a dropped unit are labelled (enough to contain lone blocks;
    labelling all is slow). Maps without one are passed over, so a tensor whose first maps happen to be
    empty (every map of a sample empty, as when one seed map is shared by its channels) is no problem.
    """
    from scipy import ndimage

    maps = dropped.reshape((-1,) + dropped.shape[-2:])
    maps = maps[maps.any(axis=(1, 2))][:max_maps]
    if not len(maps):
        return None
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    labels, n = ndimage.label(maps, structure)
    if n == 0:
        return None
    sizes = [(s[1].stop - s[1].start, s[2].stop - s[2].start) for s in ndimage.find_objects(labels)]
    return min(sizes, key=lambda hw: hw[0] * hw[1])


def judge_blocks(j, name, dropped, b) -> bool:
    if not dropped.any():
        j.fail(name, "nothing was dropped, so no blocks could be seen")
        return False
    opened = opening(dropped, b)
    stray = dropped & ~opened
    if not stray.any():
        j.ok(name)
        return True
    smallest = smallest_region(dropped)
    hint = ""
    if smallest is not None and smallest[0] * smallest[1] == 1:
        hint = ": single units are dropped (element-wise dropout, or blocks never grown from the seeds?)"
    elif smallest is not None and (smallest[0] < b or smallest[1] < b):
        hint = f": some dropped regions are only {smallest[0]} x {smallest[1]} (blocks of the wrong size, or blocks clipped at the border?)"
    j.fail(name, f"{prop.pct(float(stray.sum() / dropped.sum()))} of the dropped units belong to no fully dropped "
                 f"{b} x {b} square inside the map; every dropped unit must lie in a block_size x block_size block that "
                 f"fits in the map{hint}")
    return False


def judge_scale(j, name, out, x, rtol=1e-5) -> bool:
    kept = out != 0
    k = int(kept.sum())
    if k == 0:
        j.fail(name, "everything was dropped")
        return False
    expected = x.size / k
    ratio = out[kept] / x[kept]
    if np.allclose(ratio, expected, rtol=rtol, atol=0):
        j.ok(name)
        return True
    if np.allclose(ratio, 1.0, rtol=1e-6):
        j.fail(name, f"kept values equal x: no renormalisation; multiply the kept units by x.numel() / (number kept) = {expected:.4g}")
    elif np.ptp(ratio) > 1e-4 * np.abs(ratio).max():
        j.fail(name, f"kept values are scaled by different factors ({ratio.min():.4g} to {ratio.max():.4g}): use one factor for "
                     f"the whole tensor, x.numel() / (number of kept units) = {expected:.4g}, not one per sample or channel")
    else:
        j.fail(name, f"kept values are scaled by {float(ratio.mean()):.4g}, expected x.numel() / (number of kept units) = "
                     f"{expected:.4g} (1/(1 - p) is not right here: DropBlock does not drop exactly a fraction p)")
    return False


def independent_maps(dropped: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The maps the statistics may count as independent draws, and what was shared (None: nothing).

    The paper samples every (sample, channel) map on its own. A submission that shares one seed map across
    the channels of a sample (or across the samples) makes identical maps: one draw repeated, which would
    break the binomial and Bernstein bounds below (and once made this check read a region of an empty
    map). Such maps are counted once; the sharing itself is the mistake dropblock2d.safety judges and names.
    A correct implementation makes all 256 channel maps of a sample identical with probability below 1e-300
    (at the least, every one of them empty).
    """
    n, c = dropped.shape[:2]
    if c > 1 and bool((dropped == dropped[:, :1]).all()):
        return dropped[:, :1], "the channels of each sample"
    if n > 1 and bool((dropped == dropped[:1]).all()):
        return dropped[:1], "the samples"
    return dropped, None


def never_dropped_bound(rates: list[tuple[float, int]], b: int, h: int, w: int) -> float:
    """An upper bound on the probability that some unit of an H x W map is never dropped in any of the maps,
    for maps sampled the paper's way: ``rates`` lists (gamma, number of maps) per output. A unit reached by
    k valid corners stays kept in one map with probability (1 - gamma)^k, in M independent maps
    (1 - gamma)^(k M); the union bound sums that over the units."""
    k = coverage(b, h, w)
    log_never = sum(m * np.log1p(-g) for g, m in rates) * k
    return float(np.exp(log_never).sum())


def judge_coverage(j, name, dropped_list, rates, b, h, w) -> None:
    """Every unit of the map, edges and corners included, is dropped in some map (blocks reach every unit)."""
    bound = never_dropped_bound(rates, b, h, w)
    if bound > stats.ALPHA_PER_TEST:
        j.skip(name, f"not judged: too few independent maps to expect every unit dropped (a unit might stay kept by "
                     f"chance with probability up to {bound:.2g})")
        return
    prop.spend_stat_test(j)
    ever = np.zeros((h, w), dtype=bool)
    for d in dropped_list:
        ever |= d.reshape((-1, h, w)).any(axis=0)
    if ever.all():
        j.ok(name)
        return
    never = ~ever
    rows, cols = np.nonzero(never)
    where = ", ".join(f"({r}, {c})" for r, c in list(zip(rows, cols))[:6]) + (" ..." if len(rows) > 6 else "")
    hint = ""
    if never[-1].all() or never[:, -1].all():
        hint = (": the last row or column is never dropped, so the valid corners stop one short; they run from 0 to "
                "H - b inclusive (range(H - b + 1)), which is H - b + 1 corners per axis")
    elif never[0].all() or never[:, 0].all():
        hint = ": the first row or column is never dropped (blocks shifted away from the top or left edge?)"
    n_maps = sum(m for _, m in rates)
    j.fail(name, f"{int(never.sum())} of the {h * w} positions of the {h} x {w} maps were never dropped in any of the "
                 f"{n_maps} maps (positions {where}); with the paper's sampling every position can be dropped, and "
                 f"is, here, except with probability below {bound:.1g}{hint}")


def _db_contract_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, DB_CONTRACT)
    plan.inputs["x_small"] = prop.nonzero_input(rng, (4, 3, 9, 7))
    plan.inputs["x3"] = prop.nonzero_input(rng, (3, 9, 7))
    for p in (0.1, 0.3):
        plan.call(f"t{p}", tensor("x"), p, 3)
    plan.call("b1", tensor("x"), 0.3, 1)
    plan.call("e0.3", tensor("x"), 0.3, 3, training=False)
    plan.call("p0", tensor("x_small"), 0.0, 3)
    plan.call("p1", tensor("x_small"), 1.0, 3)
    # p so close to 1 that, with block_size 1, every one of the 756 units is dropped except with probability below 1e-10
    plan.call("none_kept", tensor("x_small"), 1 - 1e-13, 1)
    plan.call("neg", tensor("x_small"), -0.1, 3)
    plan.call("big", tensor("x_small"), 1.2, 3)
    plan.call("b0", tensor("x_small"), 0.3, 0)
    plan.call("b8", tensor("x_small"), 0.3, 8)
    plan.call("b2.5", tensor("x_small"), 0.3, 2.5)
    plan.call("x3", tensor("x3"), 0.3, 3)
    plan.call("neg_eval", tensor("x_small"), -0.1, 3, training=False)
    plan.call("b8_eval", tensor("x_small"), 0.3, 8, training=False)
    plan.call("x3_eval", tensor("x3"), 0.3, 3, training=False)


def _db_contract_judge(j):
    x = j.input_array("x")
    first = prop.tensor_out(j, "returns a tensor", "t0.3")
    if first is None:
        return
    j.ok("returns a tensor")
    if not j.expect("shape", first.shape == x.shape, f"expected shape {x.shape}, got {first.shape}"):
        return
    prop.dtype_device(j, "t0.3", F32, j.plan.device)
    prop.cuda_note(j)
    for p in (0.1, 0.3):
        out = prop.input_like(j, f"one scale for all kept units at p={p}", f"t{p}", "x")
        if out is not None:
            judge_scale(j, f"one scale for all kept units at p={p}", out, x)
    b1 = prop.input_like(j, "block_size=1 drop rate at p=0.3", "b1", "x")
    if b1 is not None:
        dropped = b1 == 0
        prop.drop_rate(j, "block_size=1 drop rate at p=0.3", dropped, 0.3)
        prop.independent(
            j, "block_size=1 units independent", dropped[..., 0::2], dropped[..., 1::2], 0.3, "neighbouring units",
            "with block_size = 1 each unit is its own block, dropped independently with gamma = p",
        )
    _eval_identity(j, "evaluation returns x", prop.input_like(j, "evaluation returns x", "e0.3", "x", "with training=False the output"), x)
    p0 = prop.input_like(j, "p=0 is the identity", "p0", "x_small", "at p = 0 the output")
    if p0 is not None:
        j.expect("p=0 is the identity", np.array_equal(p0, j.input_array("x_small")), "at p = 0 no seed is drawn: the output must equal x")
    _zeros_at_p1(j, "p=1 gives zeros", prop.input_like(j, "p=1 gives zeros", "p1", "x_small", "at p = 1 the output"))
    name = "zeros when nothing is kept"
    none_kept = prop.input_like(j, name, "none_kept", "x_small", "the output")
    if none_kept is not None:
        if np.isnan(none_kept).any() or np.isinf(none_kept).any():
            j.fail(name, "when every unit is dropped the output contains NaN or inf (x.numel() / 0 kept units): return "
                         "zeros when nothing is kept")
        elif (none_kept == 0).all():
            j.ok(name)
        else:  # a unit survived (probability below 1e-10): then the usual scaling applies
            judge_scale(j, name, none_kept, j.input_array("x_small"))
    _raises(j, "ValueError for bad arguments", [
        ("neg", "p = -0.1"), ("big", "p = 1.2"), ("b0", "block_size = 0"),
        ("b8", "block_size = 8 on 9 x 7 maps (larger than min(H, W))"), ("b2.5", "block_size = 2.5 (not an integer)"),
        ("x3", "a 3-D x"),
    ])
    _raises(j, "ValueError for bad arguments at evaluation", [
        ("neg_eval", "p = -0.1 with training=False"), ("b8_eval", "block_size = 8 with training=False"),
        ("x3_eval", "a 3-D x with training=False"),
    ])


def _db_blocks_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, DB_BIG)
    plan.inputs["x_rect"] = prop.nonzero_input(rng, DB_RECT)
    for p in (0.1, 0.3):
        plan.call(f"t{p}", tensor("x"), p, 3)
    plan.call("rect", tensor("x_rect"), 0.3, 5)


def _db_blocks_judge(j):
    x = j.input_array("x")
    h, w = x.shape[-2:]
    b = 3
    covered, rates = [], []
    for p in (0.1, 0.3):
        out = prop.input_like(j, f"blocks are {b} x {b} squares at p={p}", f"t{p}", "x")
        if out is None:
            continue
        dropped = out == 0
        blocks_ok = judge_blocks(j, f"blocks are {b} x {b} squares at p={p}", dropped, b)
        maps, shared = independent_maps(dropped)
        n_maps = maps.shape[0] * maps.shape[1]
        if shared:
            j.skip(f"statistics on independent maps at p={p}",
                   f"{shared} share one mask (a mistake dropblock2d.safety names), so the seed rate and the dropped "
                   f"fraction were judged on the {n_maps} maps that were sampled on their own")
        g = gamma(p, b, h, w)
        covered.append(maps)
        rates.append((g, n_maps))
        if blocks_ok and p == 0.1:
            smallest = smallest_region(maps)
            if n_maps < 256:
                j.skip("smallest dropped region is block_size x block_size", f"not judged: only {n_maps} independent maps")
            else:
                j.expect("smallest dropped region is block_size x block_size", smallest == (b, b),
                         f"the smallest dropped region is {'absent' if smallest is None else '%d x %d' % smallest}, but a "
                         f"lone block is {b} x {b}: blocks of the wrong size (block_size + 1?)")
        r = 1 - (1 - g) ** (b * b)
        lat = lattice(maps, b)
        k, n = int(lat.sum()), lat.size
        interval = j.binomial(n, r)
        if k in interval:
            j.ok(f"seed rate gamma at p={p}")
        else:
            seen = k / n
            implied = 1 - (1 - seen) ** (1 / (b * b)) if seen < 1 else 1.0
            hint = ""
            if abs(implied - p) < 0.25 * p:
                hint = ": gamma looks equal to p; each seed drops block_size^2 units, so gamma must be about p / block_size^2"
            elif abs(implied - p / b**2) < 0.08 * p / b**2:
                hint = ": gamma looks like p / block_size^2 without the factor H W / ((H - b + 1)(W - b + 1)) for the valid seed region"
            j.fail(f"seed rate gamma at p={p}",
                   f"units in the interior of the map were dropped with frequency {seen:.4f}; with gamma = p H W / "
                   f"(b^2 (H - b + 1)(W - b + 1)) = {g:.5f} each is dropped with probability 1 - (1 - gamma)^(b^2) = {r:.4f} "
                   f"(accepted {interval.describe()}); your seeds look like gamma = {implied:.5f}{hint}")
        prop.spend_stat_test(j)
        noise = bernstein_halfwidth(n_maps, (2 * b - 1) ** 2 / (4 * h * w))
        seen_fraction = float(maps.mean())
        expected = expected_fraction(p, b, h, w)
        j.expect(
            f"dropped fraction close to p at p={p}",
            abs(seen_fraction - expected) <= noise,
            f"{seen_fraction:.4f} of the units were dropped; at p = {p} with block_size {b} on {h} x {w} maps the paper's "
            f"sampling drops {expected:.4f} on average (a little below p because blocks overlap), and the check accepts "
            f"{expected - noise:.4f} to {expected + noise:.4f}: check gamma and the block size",
        )
    if covered:
        judge_coverage(j, "every position can be dropped", covered, rates, b, h, w)
    rect = prop.input_like(j, "blocks are 5 x 5 squares on 12 x 20 maps", "rect", "x_rect")
    if rect is not None:
        judge_blocks(j, "blocks are 5 x 5 squares on 12 x 20 maps", rect == 0, 5)


def _db_safety_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["x"] = prop.nonzero_input(rng, DB_WIDE)
    plan.inputs["g"] = rng.normal(size=(16, 8, 10, 10)).astype(np.float32)
    plan.inputs["xg"] = prop.nonzero_input(rng, (16, 8, 10, 10))
    plan.inputs["x64"] = prop.nonzero_input(rng, (8, 4, 10, 10)).astype(np.float64)
    plan.call("a", tensor("x"), 0.3, 3)
    plan.call("b", tensor("x"), 0.3, 3)
    plan.call("g1", tensor("x"), 0.3, 3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, 3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, 3, generator=generator(seed + 1))
    prop.global_seed(plan, ("s1", "s2"), tensor("x"), 0.3, 3)
    plan.call("inplace", tensor("xg"), 0.3, 3)
    plan.call("grad", tensor("xg", requires_grad=True), 0.3, 3, backward="g")
    plan.call("grad_eval", tensor("xg", requires_grad=True), 0.3, 3, training=False, backward="g")
    plan.call("grad_p1", tensor("xg", requires_grad=True), 1.0, 3, backward="g")
    plan.call("f64", tensor("x64", "float64"), 0.3, 3)


def _db_safety_judge(j):
    x = j.input_array("x")
    h, w = x.shape[-2:]
    r = 1 - (1 - gamma(0.3, 3, h, w)) ** 9
    to_mask = lambda out: lattice(out == 0, 3)  # noqa: E731 - independent Bernoulli(r) units, see the module docstring
    a = prop.input_like(j, "maps independent across samples", "a", "x")
    if a is not None:
        m = to_mask(a)
        prop.independent(j, "maps independent across samples", m[0::2], m[1::2], r, "the masks of neighbouring samples",
                         "every sample seems to share one mask: draw seeds of shape (N, C, H - b + 1, W - b + 1)")
        prop.independent(j, "maps independent across channels", m[:, 0::2], m[:, 1::2], r, "the masks of neighbouring channels",
                         "every channel seems to share one mask: DropBlock samples each (sample, channel) map on its own, "
                         "seeds of shape (N, C, H - b + 1, W - b + 1), not (N, 1, ...)")
        b_out = prop.input_like(j, "fresh mask each call", "b", "x")
        if b_out is not None:
            prop.independent(j, "fresh mask each call", m, to_mask(b_out), r, "two calls' masks",
                             "the same mask comes back every call (is a seed set inside the function, or a mask cached?)")
    _generator(j, ("g1", "g2", "g3"), to_mask, r, "the generator's seed seems to be ignored", x.shape)
    prop.judge_global_seed(j, ("s1", "s2"), x.shape)
    prop.unchanged_input(j, "inplace", "xg")

    def expected_grad(out, g):
        kept = out != 0
        return g * kept * np.float32(out.size / max(int(kept.sum()), 1))

    prop.judge_gradient(j, "grad", expected_grad, "gradient in training is m * scale * upstream")
    prop.judge_gradient(j, "grad_eval", lambda out, g: g, "gradient at evaluation is upstream")
    prop.judge_gradient_p1(j, "grad_p1")
    _float64(j, "f64", j.input_array("x64"), lambda out, x: x * (out.size / max(int((out != 0).sum()), 1)),
             "x * x.numel() / (number kept)")


# ---------------------------------------------------------------------------------------------
# practice questions (the same five as in chapter 5, answers behind a toggle there)
# ---------------------------------------------------------------------------------------------
QUESTIONS = [
    ("answer_q1", ["b"], "see 'Why element-wise dropout is weak on feature maps': what do a dropped unit's neighbours "
     "still carry, and what does the next layer's 3 x 3 kernel read?"),
    ("answer_q2", [128], "spatial dropout draws one value per (sample, channel) and shares it over height and width"),
    ("answer_q3", ["c"], "run nn.Dropout2d on a 3-D tensor inside warnings.catch_warnings(record=True) and read the warning: "
     "how does it interpret the three axes?"),
    ("answer_q4", [0.05], "gamma = p / block_size^2 * H W / ((H - block_size + 1)(W - block_size + 1)); "
     "with block_size 3 on 6 x 6 maps there are 4 x 4 valid corners"),
    ("answer_q5", ["a"], "see 'The schedule' in the DropBlock section of chapter 5"),
]


def _question_checks() -> list[Check]:
    return [prop.answer_check(f"cnn_dropout.{v[-2:]}", v, accepted, why) for v, accepted, why in QUESTIONS]


CHECKS = [
    Check("dropout2d.contract", "dropout2d", _d2_contract_plan, _d2_contract_judge,
          "shape, dtype, kept maps x / q, whole maps dropped, drop rate per (sample, channel) at p = 0.1, 0.3, 0.8, "
          "evaluation, p = 0 and 1, ValueError for bad p and non-4-D x"),
    Check("dropout2d.sharing", "dropout2d", _d2_sharing_plan, _d2_sharing_judge,
          "one draw per (sample, channel), shared over H and W, independent across samples and across channels"),
    Check("dropout2d.safety", "dropout2d", _d2_safety_plan, _d2_safety_judge,
          "input untouched, gradients, float64, a fresh mask each call, the generator honoured"),
    Check("dropblock2d.contract", "dropblock2d", _db_contract_plan, _db_contract_judge,
          "shape, dtype, one renormalisation factor numel / kept, block_size 1 is element-wise, evaluation, p = 0 and 1, "
          "ValueError for bad p, block_size and non-4-D x"),
    Check("dropblock2d.blocks", "dropblock2d", _db_blocks_plan, _db_blocks_judge,
          "dropped units form block_size x block_size squares inside the map, seed rate gamma, dropped fraction close "
          "to p (within noise of its exact expectation)"),
    Check("dropblock2d.safety", "dropblock2d", _db_safety_plan, _db_safety_judge,
          "maps independent across samples and channels, fresh each call, generator, input untouched, gradients, float64"),
] + _question_checks()
