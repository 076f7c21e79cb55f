"""Checks for assignment 05_cnn_dropout: ``dropout2d``, ``dropblock2d`` and the practice questions.

Contracts (p is the drop probability, q = 1 - p the keep probability; x has shape (N, C, H, W)):

- ``dropout2d(x, p, training=True, generator=None)``: spatial (channel) dropout. One Bernoulli draw per
  (sample, channel), shared over height and width, independent across samples, channels and calls;
  kept maps are ``x / q``, dropped maps are 0; evaluation returns x; ``ValueError`` for p outside
  [0, 1] or an x that is not 4-D; dtype, device, gradient ``m / q * upstream``, x untouched, p = 1 gives
  zeros (never NaN); random numbers from ``generator`` when one is given.
- ``dropblock2d(x, p, block_size, training=True, generator=None)``: DropBlock (Ghiasi et al. 2018) with
  the paper's sampling. For each (sample, channel) map independently, every top-left corner (i, j) with
  0 <= i <= H - b and 0 <= j <= W - b is a seed with probability
  gamma = p * H * W / (b^2 * (H - b + 1) * (W - b + 1)); each seed drops the b x b square it starts, so
  every block lies inside the map. Kept units are multiplied by one factor for the whole tensor,
  x.numel() / (number of kept units), so the rescaled mask averages exactly 1 over the tensor; if nothing
  is kept the output is zeros. p = 0 returns x, p = 1 returns zeros, evaluation returns x; ``ValueError`` for p
  outside [0, 1], block_size < 1 or larger than min(H, W), and an x that is not 4-D.

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
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from ..probe import generator, tensor
from . import Check
from . import properties as prop

RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 a swapped keep/drop probability would be invisible

# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def _count_stat_test(j) -> None:
    """A statistical test that is not a ``Judge.binomial`` call still spends one of the check's ten."""
    j._stat_tests += 1  # noqa: SLF001 - the Judge's own budget counter, so the 1e-6 per check bound holds
    if j._stat_tests > stats.MAX_STAT_TESTS_PER_CHECK:  # noqa: SLF001
        raise RuntimeError(f"check {j.plan.check} runs more than {stats.MAX_STAT_TESTS_PER_CHECK} statistical tests")


def _binomial_ok(j, name, count, n, prob, what, mistake) -> bool:
    interval = j.binomial(n, prob)
    if count in interval:
        j.ok(name)
        return True
    j.fail(name, f"{what}: seen {count / n:.4f}, expected about {prob:.4f} (accepted {interval.describe()}): {mistake}")
    return False


def _agreement(j, name, a, b, p, what, mistake) -> bool:
    return prop.independent(j, name, a, b, p, what, mistake)


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
    seen = []
    for cid, what in missing:
        rec = j.record(cid)
        got = rec.get("exc_types", ["?"])[0] if rec.get("status") == "raised" else "no exception"
        seen.append(f"{what}: {got}")
    j.fail(name, "expected ValueError; saw " + "; ".join(seen))


def _float64(j, cid, x64) -> None:
    out = j.output("float64 preserved", cid)
    if out is None:
        return
    rec = j.record(cid)["out"]
    j.expect(
        "float64 preserved",
        rec["dtype"] == "torch.float64" and out.shape == x64.shape,
        f"a float64 input must give a float64 output; got {rec['dtype']} (is the mask created as float32 and the product cast?)",
    )


def _gradient(j, cid, expected_fn, what) -> None:
    why = j.problem(cid)
    if why:
        j.fail(what, why)
        return
    rec = j.record(cid)
    if "backward_error" in rec:
        j.fail(what, f"backward failed: {rec['backward_error']['exc_message']} (is the output detached, or built with numpy?)")
        return
    grad = j.array(cid, "grad/0")
    if grad is None:
        j.fail(what, "x received no gradient: keep the computation in torch so autograd can follow it (no .detach(), .numpy() or torch.no_grad())")
        return
    expected = expected_fn(j.array(cid), j.input_array("g"))
    j.expect(what, np.allclose(grad, expected, rtol=1e-5, atol=1e-6),
             "the gradient with respect to x should be the upstream gradient masked and scaled exactly like the forward pass")


def _generator(j, ids, to_mask, p, mistake_ignored) -> None:
    g1, g2, g3 = (j.output("generator honoured", cid) for cid in ids)
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
    plan.call("x3", tensor("x3"), 0.3)
    plan.call("x2", tensor("x2"), 0.3)
    plan.call("x5", tensor("x5"), 0.3)


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
    first = j.output("returns a tensor", f"t{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    if not j.expect("shape", first.shape == x.shape, f"expected shape {x.shape}, got {first.shape}"):
        return
    prop.dtype_device(j, f"t{RATES[1]}", "torch.float32", j.plan.device)
    prop.cuda_note(j)
    for p in RATES:
        out = j.output(f"kept maps are x / q at p={p}", f"t{p}")
        if out is None or out.shape != x.shape:
            continue
        judge_inverted_values(j, f"kept maps are x / q at p={p}", out, x, p)
        dropped = out == 0
        if judge_sharing(j, f"one draw per (sample, channel) at p={p}", dropped):
            prop.drop_rate(j, f"drop rate per (sample, channel) at p={p}", dropped.all(axis=(2, 3)), p)
        else:
            j.skip(f"drop rate per (sample, channel) at p={p}", "not judged: the maps are not dropped whole (see above)")
    _eval_identity(j, "evaluation returns x", j.output("evaluation returns x", "e0.3"), x)
    p0 = j.output("p=0 is the identity", "p0")
    if p0 is not None:
        j.expect("p=0 is the identity", np.array_equal(p0, j.input_array("x_small")), "at p = 0 nothing is dropped and q = 1: the output must equal x")
    _zeros_at_p1(j, "p=1 gives zeros", j.output("p=1 gives zeros", "p1"))
    _raises(j, "ValueError outside [0, 1]", [("neg", "p = -0.1"), ("big", "p = 1.5")])
    missing = [(cid, f"a {cid[1]}-D x") for cid in ("x3", "x2", "x5") if not j.raised(cid, "ValueError")]
    if not missing:
        j.ok("ValueError unless x is 4-D")
    else:
        j.fail("ValueError unless x is 4-D", "expected ValueError for " + ", ".join(w for _, w in missing) + ": dropout2d "
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
        out = j.output(f"one draw per (sample, channel) at p={p}", cid)
        if out is None:
            continue
        if out.shape != j.input_array("x").shape:
            j.fail(f"one draw per (sample, channel) at p={p}", f"expected shape {j.input_array('x').shape}, got {out.shape}")
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
    plan.call("f64", tensor("x64", "float64"), 0.3)
    plan.call("a", tensor("x"), 0.3)
    plan.call("b", tensor("x"), 0.3)
    plan.call("g1", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, generator=generator(seed + 1))


def _d2_safety_judge(j):
    prop.unchanged_input(j, "inplace", "x")
    _gradient(j, "grad", lambda out, g: g * (out != 0) / np.float32(0.7), "gradient in training is m / q * upstream")
    _gradient(j, "grad_eval", lambda out, g: g, "gradient at evaluation is upstream")
    _float64(j, "f64", j.input_array("x64"))
    a, b = j.output("fresh mask each call", "a"), j.output("fresh mask each call", "b")
    if a is None or b is None:
        return
    if not (a.shape == b.shape == j.input_array("x").shape and slice_structure(a == 0)[0] and slice_structure(b == 0)[0]):
        why = "not judged: whole (sample, channel) maps are not dropped (see dropout2d.contract)"
        j.skip("fresh mask each call", why)
        j.skip("generator honoured", why)
        return
    prop.independent(
        j, "fresh mask each call", slice_mask(a), slice_mask(b), 0.3, "two calls' channel masks",
        "the same mask comes back every call (is a seed set inside the function, or a mask cached?)",
    )
    _generator(j, ("g1", "g2", "g3"), slice_mask, 0.3, "the generator's seed seems to be ignored")


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
    """The smallest bounding box (height, width) of a connected dropped region (4-connected within a map).

    Only the first ``max_maps`` maps are labelled (enough to contain lone blocks; labelling all is slow).
    """
    from scipy import ndimage

    dropped = dropped.reshape((-1, 1) + dropped.shape[-2:])[:max_maps]

    structure = np.zeros((3, 3, 3, 3), dtype=bool)
    structure[1, 1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    labels, n = ndimage.label(dropped, structure)
    if n == 0:
        return None
    sizes = [(s[2].stop - s[2].start, s[3].stop - s[3].start) for s in ndimage.find_objects(labels)]
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


def judge_scale(j, name, out, x) -> bool:
    kept = out != 0
    k = int(kept.sum())
    if k == 0:
        j.fail(name, "everything was dropped")
        return False
    expected = x.size / k
    ratio = out[kept] / x[kept]
    if np.allclose(ratio, expected, rtol=1e-5, atol=0):
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
    plan.call("neg", tensor("x_small"), -0.1, 3)
    plan.call("big", tensor("x_small"), 1.2, 3)
    plan.call("b0", tensor("x_small"), 0.3, 0)
    plan.call("b8", tensor("x_small"), 0.3, 8)
    plan.call("x3", tensor("x3"), 0.3, 3)


def _db_contract_judge(j):
    x = j.input_array("x")
    first = j.output("returns a tensor", "t0.3")
    if first is None:
        return
    j.ok("returns a tensor")
    if not j.expect("shape", first.shape == x.shape, f"expected shape {x.shape}, got {first.shape}"):
        return
    prop.dtype_device(j, "t0.3", "torch.float32", j.plan.device)
    prop.cuda_note(j)
    for p in (0.1, 0.3):
        out = j.output(f"one scale for all kept units at p={p}", f"t{p}")
        if out is not None and out.shape == x.shape:
            judge_scale(j, f"one scale for all kept units at p={p}", out, x)
    b1 = j.output("block_size=1 is element-wise dropout", "b1")
    if b1 is not None and b1.shape == x.shape:
        dropped = b1 == 0
        prop.drop_rate(j, "block_size=1 drop rate at p=0.3", dropped, 0.3)
        prop.independent(
            j, "block_size=1 units independent", dropped[..., 0::2], dropped[..., 1::2], 0.3, "neighbouring units",
            "with block_size = 1 each unit is its own block, dropped independently with gamma = p",
        )
    _eval_identity(j, "evaluation returns x", j.output("evaluation returns x", "e0.3"), x)
    p0 = j.output("p=0 is the identity", "p0")
    if p0 is not None:
        j.expect("p=0 is the identity", np.array_equal(p0, j.input_array("x_small")), "at p = 0 no seed is drawn: the output must equal x")
    _zeros_at_p1(j, "p=1 gives zeros", j.output("p=1 gives zeros", "p1"))
    _raises(j, "ValueError for bad arguments", [
        ("neg", "p = -0.1"), ("big", "p = 1.2"), ("b0", "block_size = 0"),
        ("b8", "block_size = 8 on 9 x 7 maps (larger than min(H, W))"), ("x3", "a 3-D x"),
    ])


def _db_blocks_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, DB_BIG)
    plan.inputs["x_rect"] = prop.nonzero_input(rng, DB_RECT)
    for p in (0.1, 0.3):
        plan.call(f"t{p}", tensor("x"), p, 3)
    plan.call("rect", tensor("x_rect"), 0.3, 5)


def _db_blocks_judge(j):
    x = j.input_array("x")
    n_maps = x.shape[0] * x.shape[1]
    h, w = x.shape[-2:]
    b = 3
    noise = bernstein_halfwidth(n_maps, (2 * b - 1) ** 2 / (4 * h * w))
    for p in (0.1, 0.3):
        out = j.output(f"blocks are {b} x {b} squares at p={p}", f"t{p}")
        if out is None:
            continue
        if out.shape != x.shape:
            j.fail(f"blocks are {b} x {b} squares at p={p}", f"expected shape {x.shape}, got {out.shape}")
            continue
        dropped = out == 0
        blocks_ok = judge_blocks(j, f"blocks are {b} x {b} squares at p={p}", dropped, b)
        if blocks_ok and p == 0.1:
            smallest = smallest_region(dropped)
            j.expect("smallest dropped region is block_size x block_size", smallest == (b, b),
                     f"the smallest dropped region is {smallest[0]} x {smallest[1]}, but a lone block is {b} x {b}: "
                     "blocks of the wrong size (block_size + 1?)")
        g = gamma(p, b, h, w)
        r = 1 - (1 - g) ** (b * b)
        lat = lattice(dropped, b)
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
        _count_stat_test(j)
        seen_fraction = float(dropped.mean())
        expected = expected_fraction(p, b, h, w)
        j.expect(
            f"dropped fraction close to p at p={p}",
            abs(seen_fraction - expected) <= noise,
            f"{seen_fraction:.4f} of the units were dropped; at p = {p} with block_size {b} on {h} x {w} maps the paper's "
            f"sampling drops {expected:.4f} on average (a little below p because blocks overlap), and the check accepts "
            f"{expected - noise:.4f} to {expected + noise:.4f}: check gamma and the block size",
        )
    rect = j.output("blocks are 5 x 5 squares on 12 x 20 maps", "rect")
    if rect is not None:
        if rect.shape != j.input_array("x_rect").shape:
            j.fail("blocks are 5 x 5 squares on 12 x 20 maps", f"expected shape {j.input_array('x_rect').shape}, got {rect.shape}")
        else:
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
    plan.call("inplace", tensor("xg"), 0.3, 3)
    plan.call("grad", tensor("xg", requires_grad=True), 0.3, 3, backward="g")
    plan.call("grad_eval", tensor("xg", requires_grad=True), 0.3, 3, training=False, backward="g")
    plan.call("f64", tensor("x64", "float64"), 0.3, 3)


def _db_safety_judge(j):
    x = j.input_array("x")
    h, w = x.shape[-2:]
    r = 1 - (1 - gamma(0.3, 3, h, w)) ** 9
    to_mask = lambda out: lattice(out == 0, 3)  # noqa: E731 - independent Bernoulli(r) units, see the module docstring
    a = j.output("maps independent across samples", "a")
    if a is not None and a.shape == x.shape:
        m = to_mask(a)
        prop.independent(j, "maps independent across samples", m[0::2], m[1::2], r, "the masks of neighbouring samples",
                         "every sample seems to share one mask: draw seeds of shape (N, C, H - b + 1, W - b + 1)")
        prop.independent(j, "maps independent across channels", m[:, 0::2], m[:, 1::2], r, "the masks of neighbouring channels",
                         "every channel seems to share one mask: DropBlock samples each (sample, channel) map on its own, "
                         "seeds of shape (N, C, H - b + 1, W - b + 1), not (N, 1, ...)")
        b_out = j.output("fresh mask each call", "b")
        if b_out is not None and b_out.shape == x.shape:
            prop.independent(j, "fresh mask each call", m, to_mask(b_out), r, "two calls' masks",
                             "the same mask comes back every call (is a seed set inside the function, or a mask cached?)")
    _generator(j, ("g1", "g2", "g3"), to_mask, r, "the generator's seed seems to be ignored")
    prop.unchanged_input(j, "inplace", "xg")

    def expected_grad(out, g):
        kept = out != 0
        return g * kept * np.float32(out.size / max(int(kept.sum()), 1))

    _gradient(j, "grad", expected_grad, "gradient in training is m * scale * upstream")
    _gradient(j, "grad_eval", lambda out, g: g, "gradient at evaluation is upstream")
    _float64(j, "f64", j.input_array("x64"))


# ---------------------------------------------------------------------------------------------
# practice questions (the same five as in chapter 5, answers behind a toggle there)
# ---------------------------------------------------------------------------------------------
QUESTIONS = [
    ("answer_q1", ["b"], "see 'Why element-wise dropout is weak on feature maps': what do a dropped unit's neighbours "
     "still carry, and what does the next layer's 3 x 3 kernel read?"),
    ("answer_q2", [128, "128"], "spatial dropout draws one value per (sample, channel) and shares it over height and width"),
    ("answer_q3", ["c"], "run nn.Dropout2d on a 3-D tensor inside warnings.catch_warnings(record=True) and read the warning: "
     "how does it interpret the three axes?"),
    ("answer_q5", ["a"], "see 'The schedule' in the DropBlock section of chapter 5"),
]
NUMERIC_QUESTIONS = [
    ("answer_q4", 0.05, 1e-6, "gamma = p / block_size^2 * H W / ((H - block_size + 1)(W - block_size + 1)); "
     "with block_size 3 on 6 x 6 maps there are 4 x 4 valid corners"),
]


def numeric_answer_check(name: str, variable: str, value: float, tol: float, why: str) -> Check:
    """Like ``properties.answer_check``, for a number: accepted within ``tol`` (so 0.2 / 9 * 36 / 16 counts)."""

    def build(plan, rng):
        plan.call("answer", scenario="autograde.checks.properties:read_answer")

    def judge(j):
        why_missing = j.problem("answer")
        if why_missing:
            j.fail("answer", why_missing.replace("is not implemented yet", "has no answer yet"))
            return
        got = j.value("answer", "answer")
        if j.value("answer", "answer_type") or isinstance(got, bool) or not isinstance(got, (int, float)):
            j.fail("answer", f"{variable} should be a number such as 0.3, not {got!r}")
            return
        j.expect("answer", abs(got - value) <= tol, f"{variable} = {got!r} is not right: {why}")

    return Check(name, variable, build, judge, f"practice question: {variable}")


def _question_checks() -> list[Check]:
    found = [prop.answer_check(f"cnn_dropout.{v[-2:]}", v, accepted, why) for v, accepted, why in QUESTIONS]
    found += [numeric_answer_check(f"cnn_dropout.{v[-2:]}", v, value, tol, why) for v, value, tol, why in NUMERIC_QUESTIONS]
    return sorted(found, key=lambda c: c.name)


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
