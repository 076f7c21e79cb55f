"""Property verdicts shared by every dropout variant's checks (chapters 2, 4, 5, 6).

Each helper records one named property on a ``Judge``. Messages say what was expected, what was
seen and the likely mistake, in the words the book's "Common mistakes" callouts use.
"""

from __future__ import annotations

import numpy as np

from .. import stats
from ..probe import scenario
from ..verdict import Judge

# Speed: pass when the best of SPEED_REPEATS runs is within SPEED_FACTOR of the best run of PyTorch's own
# operator, or under SPEED_FLOOR_SECONDS, which absorbs timer noise, the grader's round trip to the kernel
# for each timing cell (a few ms) and the CPU-to-GPU copy of a numpy-made mask on a fast GPU. In the
# instructor's grader both are timed by the grader's clock, alternating, so load affects both alike. Measured on a 2-core CPU, a million elements:
# torch's bernoulli_ and F.dropout about 11 ms; correct implementations written five different ways
# 3.5-11 ms (0.3x-1x); a Python loop over the elements 123 ms (11x). A factor of 4 leaves room on
# both sides.
SPEED_FACTOR = 4.0
SPEED_FLOOR_SECONDS = 0.02
SPEED_REPEATS = 5
SPEED_ELEMENTS = 1_000_000


def nonzero_input(rng: np.random.Generator, shape) -> np.ndarray:
    """Values with magnitudes in [0.5, 2) and random signs: no zeros, so a zero in an output means 'dropped'."""
    mag = rng.uniform(0.5, 2.0, size=shape)
    return (mag * rng.choice([-1.0, 1.0], size=shape)).astype(np.float32)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# --- reading records defensively ------------------------------------------------------------------
# Everything in a record is what the submission's process wrote (validated against the plan by
# ``autograde.records``, but a shape, a dtype or a scenario's JSON fact can still be anything). A verdict
# reads it through these helpers, which turn an unexpected record into a failed property that says
# what came back, so no verdict raises on what a submission returned.
_KINDS = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    list: lambda v: isinstance(v, list),
    dict: lambda v: isinstance(v, dict),
}


def fact(j: Judge, cid: str, key: str, kind: type, default=None):
    """The JSON fact ``key`` a scenario recorded for call ``cid`` if it is a ``kind`` (bool, int, float, str,
    list or dict; an int counts as a float, a bool as neither); otherwise ``default``."""
    values = j.record(cid).get("values")
    value = values.get(key, default) if isinstance(values, dict) else default
    return value if _KINDS[kind](value) else default


def out_dtype(j: Judge, cid: str, key: str = "out") -> str | None:
    """The torch dtype (e.g. 'torch.float32') the record reports for the tensor ``key`` of call ``cid``."""
    rec = j.record(cid)
    desc = rec.get("out") if key == "out" else None
    if not (isinstance(desc, dict) and desc.get("kind") == "tensor"):
        values = rec.get("values")
        value = values.get(key) if isinstance(values, dict) else None
        desc = value.get("tensor") if isinstance(value, dict) else None
    if isinstance(desc, dict) and isinstance(desc.get("dtype"), str):
        return desc["dtype"]
    arr = j.array(cid, key)
    return None if arr is None else f"torch.{arr.dtype.name}"


def out_device(j: Judge, cid: str, key: str = "out") -> str | None:
    rec = j.record(cid)
    desc = rec.get("out") if key == "out" else None
    if not (isinstance(desc, dict) and desc.get("kind") == "tensor"):
        values = rec.get("values")
        value = values.get(key) if isinstance(values, dict) else None
        desc = value.get("tensor") if isinstance(value, dict) else None
    return desc.get("device") if isinstance(desc, dict) and isinstance(desc.get("device"), str) else None


def tensor_out(j: Judge, name: str, cid: str, shape=None, dtype: str | None = None, key: str = "out",
               what: str = "the output") -> np.ndarray | None:
    """Array ``key`` of call ``cid`` (its output by default) when the call returned and the array has
    ``shape`` and ``dtype`` (a torch dtype name, 'torch.float32'); else a failure of ``name`` that says what
    came back instead, and None. ``shape``/``dtype`` None: not required."""
    why = j.problem(cid)
    if why:
        j.fail(name, why)
        return None
    arr = j.array(cid, key)
    if arr is None:
        j.fail(name, f"{what} did not come back from {j.plan.target} (expected a torch.Tensor)")
        return None
    if shape is not None and tuple(arr.shape) != tuple(shape):
        j.fail(name, f"{what} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
        return None
    if dtype is not None and out_dtype(j, cid, key) != dtype:
        j.fail(name, f"{what} has dtype {out_dtype(j, cid, key)}, expected {dtype}")
        return None
    if arr.dtype.kind not in "biuf":
        j.fail(name, f"{what} holds {arr.dtype} values, expected numbers")
        return None
    return arr


def input_like(j: Judge, name: str, cid: str, input_name: str, what: str = "the output") -> np.ndarray | None:
    """``tensor_out`` with the shape and dtype of plan input ``input_name`` (the usual dropout contract)."""
    x = j.input_array(input_name)
    return tensor_out(j, name, cid, x.shape, f"torch.{x.dtype.name}", what=what)


def drop_rate(j: Judge, name: str, dropped: np.ndarray, p: float) -> bool:
    """``dropped`` is a boolean array; each entry should be True independently with probability p."""
    dropped = np.asarray(dropped, dtype=bool)
    if dropped.size == 0:
        j.fail(name, f"at p = {p} there were no entries to count (an empty output)")
        return False
    n, k = dropped.size, int(np.count_nonzero(dropped))
    interval = j.binomial(n, p)
    if k in interval:
        j.ok(name)
        return True
    seen = k / n
    hint = ""
    if abs(seen - (1 - p)) < 0.01:
        hint = f": keep and drop look swapped (p = {p} is the probability of dropping)"
    elif k == 0:
        hint = ": nothing was dropped (is the mask applied, and is training mode honoured?)"
    elif k == n:
        hint = ": everything was dropped"
    j.fail(
        name,
        f"at p = {p} about {pct(1 - seen)} of entries survived, but dropout should keep about "
        f"{pct(1 - p)} (accepted dropped fraction {interval.describe()}, seen {seen:.4f}){hint}",
    )
    return False


def spend_stat_test(j: Judge) -> None:
    """A statistical test that is not a ``Judge.binomial`` call still spends one of the check's ten, so the
    union bound of ``autograde.stats`` (at most 1e-6 false failure per check) keeps holding."""
    j._stat_tests += 1  # noqa: SLF001 - the Judge's own budget counter
    if j._stat_tests > stats.MAX_STAT_TESTS_PER_CHECK:  # noqa: SLF001
        raise RuntimeError(f"check {j.plan.check} runs more than {stats.MAX_STAT_TESTS_PER_CHECK} statistical tests")


def agreement_interval(n: int, k_a: int, k_b: int, alpha: float = stats.ALPHA_PER_TEST) -> stats.Interval:
    """Accepted numbers of agreeing positions of two independent masks with ``k_a`` and ``k_b`` True entries.

    Why this is exact, whatever the drop rate (so a wrong rate never fails an independence property):

    - Null hypothesis: the masks ``a`` and ``b`` (``n`` positions each) are independent of each other, and the
      entries of each are exchangeable. I.i.d. Bernoulli(r) entries are exchangeable for every r, so this
      holds for a correct implementation and for one whose only bug is its rate.
    - Condition on the observed counts K_a = sum(a), K_b = sum(b). Given K_a, exchangeability makes the set
      of True positions of ``a`` uniform among the C(n, K_a) subsets of that size, independently of ``b``.
      So the overlap X = sum(a & b) is Hypergeometric(population n, K_a successes, K_b draws), exactly.
    - The agreement count is A = n - K_a - K_b + 2X (positions where both are True or both False). Its
      conditional mean is n (r_a r_b + (1 - r_a)(1 - r_b)) with the observed rates r = K / n: the
      agreement independence predicts for masks of *those* rates, not of the nominal p.
    - The interval cuts alpha / 2 from each tail of X's exact distribution (scipy's ppf/isf on a discrete
      law), so P(reject | K_a, K_b) <= alpha for every pair of counts, hence unconditionally too. No
      plug-in estimate, no slack: the false-failure probability is at most ``alpha`` (1e-7), one of the
      check's ten statistical tests (``autograde.stats``).
    - Power: a shared or repeated mask has X = K_a = K_b, the largest overlap possible, which lies far
      outside the interval unless a mask is all True or all False (reported separately by ``independent``).
    """
    from scipy.stats import hypergeom

    lo_x, hi_x = max(0, k_a + k_b - n), min(k_a, k_b)
    if 0 < k_a < n and 0 < k_b < n:
        lo_x = max(lo_x, int(hypergeom.ppf(alpha / 2, n, k_a, k_b)))
        hi_x = min(hi_x, int(hypergeom.isf(alpha / 2, n, k_a, k_b)))
    expected = (n - k_a - k_b + 2 * k_a * k_b / n) / n
    return stats.Interval(n, expected, n - k_a - k_b + 2 * lo_x, n - k_a - k_b + 2 * hi_x)


def independent(j: Judge, name: str, a: np.ndarray, b: np.ndarray, p: float, what: str, mistake: str) -> bool:
    """Two boolean masks of the same shape, drawn independently: judged against their *observed* rates.

    ``p`` is the nominal drop rate, named in messages only: the acceptance interval comes from the counts
    of ``a`` and ``b`` themselves (see ``agreement_interval``), so a submission whose only mistake is its
    drop rate keeps this property, and loses only the drop-rate property that names the mistake.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.size == 0:
        j.fail(name, f"{what} could not be compared: their shapes {a.shape} and {b.shape} differ or are empty")
        return False
    n, k_a, k_b = a.size, int(np.count_nonzero(a)), int(np.count_nonzero(b))
    spend_stat_test(j)
    if k_a in (0, n) or k_b in (0, n):
        j.fail(name, f"{what} could not be judged: at p = {p} one of them makes the same decision for every entry "
                     "(all dropped or all kept), so nothing about it is random (see the drop-rate property)")
        return False
    interval = agreement_interval(n, k_a, k_b)
    agree = n - int(np.count_nonzero(a != b))
    if agree in interval:
        j.ok(name)
        return True
    if agree < interval.lo:  # less agreement than chance: not one mask repeated, but entries drawn in groups
        mistake = ("they agree less often than independent masks would, which happens when the entries within a mask "
                   "are not drawn independently (whole rows, columns or time steps sharing one draw?)")
    j.fail(
        name,
        f"{what} agree on {pct(agree / n)} of positions; independent masks that drop {pct(k_a / n)} and "
        f"{pct(k_b / n)} of entries (as these do) agree on about {pct(interval.prob)} (accepted "
        f"{interval.describe()}): {mistake}",
    )
    return False


def raised_what(j: Judge, cid: str) -> str:
    """What call ``cid`` did instead of raising, in words: 'no exception', 'RuntimeError', 'no record'."""
    rec = j.record(cid)
    if rec.get("status") == "raised":
        types = rec.get("exc_types")
        return str(types[0]) if isinstance(types, list) and types else "an exception"
    if rec.get("status") == "ok":
        return "no exception"
    return j.problem(cid) or "no record"


def raises(j: Judge, name: str, cids: list[str], exc: str, p_values: list[float]) -> None:
    missing = [p for cid, p in zip(cids, p_values) if not j.raised(cid, exc)]
    if not missing:
        j.ok(name)
        return
    seen = [f"p = {p}: {raised_what(j, cid)}" for cid, p in zip(cids, p_values)]
    j.fail(name, f"expected {exc} for p outside [0, 1]; saw " + ", ".join(seen))


def dtype_device(j: Judge, cid: str, dtype: str, device: str) -> None:
    if j.problem(cid) or j.array(cid) is None:
        return  # the missing output is reported by the property that needed it
    got, where = out_dtype(j, cid), out_device(j, cid)
    j.expect("dtype", got == dtype, f"expected dtype {dtype}, got {got}")
    j.expect("device", where == device.split(":")[0], f"expected the output on {device}, got {where}")


def cuda_note(j: Judge) -> None:
    """CPU-only grading cannot test the CUDA path; say so instead of failing."""
    if j.plan.device == "cpu":
        why = "CUDA is not available on this machine" if not j.plan.info.get("cuda_available") else "graded with --device cpu"
        j.skip("cuda", f"{why}: device handling was checked on CPU only")


def unchanged_input(j: Judge, cid: str, input_name: str, index: int = 0, name: str = "input unchanged") -> None:
    """The probe's copy of the call's ``index``-th tensor argument after the call equals the input."""
    why = j.problem(cid)
    if why:
        j.fail(name, why)
        return
    after, x = j.array(cid, f"after/{index}"), j.input_array(input_name)
    if after is None or after.shape != x.shape:
        j.fail(name, "the grader got no usable record of the input after the call, so it cannot tell whether "
                     "it was modified")
        return
    j.expect(
        name,
        np.array_equal(after, x.astype(after.dtype, copy=False)),
        "the input tensor was modified: build a new tensor (x * mask) instead of changing x in place (x *= mask, x[...] = 0)",
    )


def speed(j: Judge, cid: str, what: str) -> None:
    """The best of the student's timed calls against the best of the reference's, both measured by the
    grader's clock (outside the student's process, alternating, so both see the same load)."""
    why = j.problem(cid)
    if why:
        j.fail("speed", why)
        return
    t = j.timing(cid)
    seconds = lambda v: [x for x in v if _KINDS[float](x) and x == x and x >= 0] if isinstance(v, list) else []  # noqa: E731
    student, reference = seconds(t.get("student")), seconds(t.get("reference"))
    if not student:
        j.fail("speed", f"the timing runs of {j.plan.target} failed: {t.get('error') or 'no timing came back'}")
        return
    if not reference:
        j.fail("speed", "the grader measured no reference time (a bug in the grader: tell your instructor)")
        return
    best, ref = min(student), min(reference)
    limit = max(SPEED_FACTOR * ref, SPEED_FLOOR_SECONDS)
    j.expect(
        "speed",
        best <= limit,
        f"{j.plan.target} took {best * 1e3:.1f} ms on {SPEED_ELEMENTS:,} elements; {what} takes "
        f"{ref * 1e3:.2f} ms and the limit is {limit * 1e3:.1f} ms: avoid Python loops over elements, "
        "draw the whole mask with one tensor operation",
    )


# --- practice questions -------------------------------------------------------------------------
# How an answer may be written (the assignments' practice-question cells say the same):
# - a letter question takes one letter as a string; case and surrounding spaces do not matter (" B " is "b");
# - a number question takes any real number: int, float, a NumPy scalar (np.float32(0.05), np.int64(128)),
#   a fractions.Fraction, a decimal.Decimal, or a string holding a number ("128"); bool is not a number here.
#   It is accepted within NUMBER_TOLERANCE of the right value, relative to that value when it exceeds 1.
NUMBER_TOLERANCE = 1e-6


@scenario()
def read_answer(value) -> dict:
    """Scenario: report a student's answer variable as plain JSON: {"text": ...}, {"number": ...} or, for
    anything else, {"answer_type": <type name>}. Numbers of every real type become a float here, in the
    student's process, because only plain JSON crosses back to the grader."""
    import numbers

    if isinstance(value, str):
        return {"text": value[:200]}
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        try:
            return {"number": float(value)}
        except (OverflowError, TypeError, ValueError):
            return {"answer_type": type(value).__name__}
    return {"answer_type": type(value).__name__}


def _as_number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def answer_check(name: str, variable: str, accepted, why: str):
    """A check that an answer variable holds the right answer.

    ``accepted``: letters (strings) for a multiple-choice question, or one number for a numeric one (any
    string forms in the list are ignored: a number may always be written as a string). The answers are
    public in the book behind a toggle; the practice questions are graded for engagement and feedback, not
    secrecy.
    """
    from . import Check

    numbers_ = [a for a in accepted if isinstance(a, (int, float)) and not isinstance(a, bool)]
    letters = [a.strip().lower() for a in accepted if isinstance(a, str)]
    value = float(numbers_[0]) if numbers_ else None

    def build(plan, rng):
        plan.call("answer", scenario="autograde.checks.properties:read_answer")

    def judge(j):
        why_missing = j.problem("answer")
        if why_missing:
            j.fail("answer", why_missing.replace("is not implemented yet", "has no answer yet"))
            return
        text, number = fact(j, "answer", "text", str), fact(j, "answer", "number", float)
        other = fact(j, "answer", "answer_type", str)
        if value is None:  # a letter question
            if text is None:
                got = f"a {other}" if other else ("the number " + f"{number:g}" if number is not None else "nothing")
                j.fail("answer", f"{variable} should be a plain value such as 'b' (one letter, as a string), not {got}; "
                                 f"so it is not right: {why}")
                return
            j.expect("answer", text.strip().lower() in letters, f"{variable} = {text!r} is not right: {why}")
            return
        if number is None and text is not None:
            number = _as_number(text)
        if number is None:
            got = repr(text) if text is not None else (f"a {other}" if other else "nothing")
            j.fail("answer", f"{variable} should be a number such as 0.3 (any real type), not {got}")
            return
        tol = NUMBER_TOLERANCE * max(1.0, abs(value))
        j.expect("answer", abs(number - value) <= tol, f"{variable} = {number:g} is not right: {why}")

    return Check(name, variable, build, judge, f"practice question: {variable}")


# --- shared by every dropout variant --------------------------------------------------------------
@scenario("out")
def global_seed_call(fn, *args, torch_seed: int, **kwargs) -> dict:
    """Scenario: ``fn(*args, **kwargs)`` right after ``torch.manual_seed(torch_seed)``. Two such calls with the
    same seed give the same result when, without a generator, ``fn`` draws from PyTorch's global random state."""
    import torch

    torch.manual_seed(torch_seed)
    out = fn(*args, **kwargs)
    return {"out": out} if isinstance(out, torch.Tensor) else {"out_kind": type(out).__name__}


def global_seed(plan, cids: tuple[str, str], *args, **kwargs) -> None:
    """Add two ``global_seed_call`` calls of the target with the same torch seed (drawn from the plan's seed)."""
    seed = plan.seed % 2**31
    for cid in cids:
        plan.call(cid, *args, torch_seed=seed, scenario="autograde.checks.properties:global_seed_call", **kwargs)


GLOBAL_STATE = ("with generator=None, two calls right after the same torch.manual_seed(...) gave different masks: "
                "without a generator, draw from PyTorch's global random state (torch.rand(..., generator=None)), not "
                "from NumPy's or Python's random module or a seed of your own")


def judge_global_seed(j, cids, shape, to_mask=lambda a: a == 0, name="global random state without a generator") -> None:
    a, b = (tensor_out(j, name, cid, shape) for cid in cids)
    if a is None or b is None:
        return
    j.expect(name, np.array_equal(to_mask(a), to_mask(b)), GLOBAL_STATE)


def judge_randomness(j, fresh_ids, wide_ids, generator_ids, p_fresh=0.3, p_wide=0.8, to_mask=lambda a, cid: a == 0,
                     shape=None, global_ids=None):
    """Independence across rows and columns, freshness across calls, and generator reproducibility; with
    ``global_ids``, reproducibility from torch's global seed when no generator is given.

    ``to_mask`` turns a call's output into the boolean 'dropped' mask; ``shape`` is every output's shape (2-D).
    """
    a_id, b_id = fresh_ids
    a = tensor_out(j, "fresh mask each call", a_id, shape)
    b = tensor_out(j, "fresh mask each call", b_id, shape)
    if a is not None and b is not None:
        independent(
            j, "fresh mask each call", to_mask(a, a_id), to_mask(b, b_id), p_fresh, "two calls' masks",
            "the same mask comes back every call (is a seed set inside the function, or a mask cached?)",
        )
    for p, cid in ((p_fresh, a_id), (p_wide, wide_ids)):
        arr = tensor_out(j, f"rows independent at p={p}", cid, shape)
        if arr is None or arr.ndim != 2:
            continue
        m = to_mask(arr, cid)
        independent(
            j, f"rows independent at p={p}", m[0::2], m[1::2], p, "neighbouring rows",
            "one mask seems to be shared by every row (draw the mask with the full shape, not one row)",
        )
        independent(
            j, f"columns independent at p={p}", m[:, 0::2], m[:, 1::2], p, "neighbouring columns",
            "whole rows are kept or dropped together (draw one value per entry, not per row)",
        )
    g1, g2, g3 = (tensor_out(j, "generator honoured", cid, shape) for cid in generator_ids)
    if global_ids:
        judge_global_seed(j, global_ids, shape, lambda arr: to_mask(arr, global_ids[0]))
    if g1 is None or g2 is None or g3 is None:
        return
    if j.expect(
        "generator honoured",
        np.array_equal(g1, g2),
        "two calls with generators seeded alike gave different masks: draw from the generator argument "
        "(torch.rand(..., generator=generator)) instead of the global random state",
    ):
        independent(
            j, "generator seed matters", to_mask(g1, generator_ids[0]), to_mask(g3, generator_ids[2]), p_fresh,
            "masks from differently seeded generators", "the generator's seed seems to be ignored",
        )


def judge_gradient(j, cid, expected_fn, what, index: int = 0, upstream: str = "g"):
    """``expected_fn(out, upstream)`` gives the gradient a correct implementation produces, for the
    call's ``index``-th tensor argument; ``upstream`` names the plan input back-propagated."""
    g = j.input_array(upstream)
    out = tensor_out(j, what, cid, g.shape)
    if out is None:
        return
    rec = j.record(cid)
    if isinstance(rec.get("backward_error"), dict):
        message = rec["backward_error"].get("exc_message", "")
        j.fail(what, f"backward failed: {message} (is the output detached, or built with numpy?)")
        return
    grad = j.array(cid, f"grad/{index}")
    if grad is None:
        j.fail(what, "x received no gradient: keep the computation in torch so autograd can follow it (no .detach(), .numpy() or torch.no_grad())")
        return
    expected = expected_fn(out, g)
    j.expect(what, grad.shape == expected.shape and bool(np.allclose(grad, expected, rtol=1e-5, atol=1e-6)),
             "the gradient with respect to x should be the upstream gradient masked (and scaled) exactly like the forward pass")


def judge_gradient_p1(j, cid, name="gradient at p=1 is zero or absent") -> None:
    """At p = 1 the output need not be connected to x (torch.zeros_like(x) is fine); if it is, x's gradient
    must be zero, never NaN (the trap: torch.where(keep, x / q, 0) back-propagates 0 * (1 / 0) = NaN)."""
    g = j.input_array("g")
    if tensor_out(j, name, cid, g.shape, what="the output at p = 1") is None:
        return
    grad = j.array(cid, "grad/0")
    if grad is None:  # not connected to x (backward raised, or x got no gradient): allowed at p = 1
        j.ok(name)
        return
    if grad.shape != g.shape or grad.dtype.kind != "f":
        j.fail(name, f"x's gradient came back as {grad.dtype} of shape {grad.shape}, expected the shape {g.shape} of x")
        return
    if np.isnan(grad).any():
        j.fail(name, "at p = 1 the gradient with respect to x contains NaN (torch.where(keep, x / q, 0) with q = 0 "
                     "back-propagates 0 * inf): return zeros at p = 1 before dividing by q")
    else:
        j.expect(name, not grad.any(), "at p = 1 everything is dropped, so the gradient with respect to x must be zero")
