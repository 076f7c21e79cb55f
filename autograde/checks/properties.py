"""Property verdicts shared by every dropout variant's checks (chapters 2, 4, 5, 6).

Each helper records one named property on a ``Judge``. Messages say what was expected, what was
seen and the likely mistake, in the words the book's "Common mistakes" callouts use.
"""

from __future__ import annotations

import json

import numpy as np

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


def drop_rate(j: Judge, name: str, dropped: np.ndarray, p: float) -> bool:
    """``dropped`` is a boolean array; each entry should be True independently with probability p."""
    n, k = dropped.size, int(dropped.sum())
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


def independent(j: Judge, name: str, a: np.ndarray, b: np.ndarray, p: float, what: str, mistake: str) -> bool:
    """Two boolean masks drawn independently agree at each position with probability p^2 + q^2."""
    agree = int((a == b).sum())
    n = a.size
    interval = j.binomial(n, p * p + (1 - p) * (1 - p))
    if agree in interval:
        j.ok(name)
        return True
    j.fail(
        name,
        f"{what} agree on {pct(agree / n)} of positions; independent draws at p = {p} agree on about "
        f"{pct(p * p + (1 - p) ** 2)} (accepted {interval.describe()}): {mistake}",
    )
    return False


def raises(j: Judge, name: str, cids: list[str], exc: str, p_values: list[float]) -> None:
    missing = [p for cid, p in zip(cids, p_values) if not j.raised(cid, exc)]
    if not missing:
        j.ok(name)
        return
    seen = []
    for cid, p in zip(cids, p_values):
        rec = j.record(cid)
        got = rec.get("exc_types", ["nothing"])[0] if rec.get("status") == "raised" else "no exception"
        seen.append(f"p = {p}: {got}")
    j.fail(name, f"expected {exc} for p outside [0, 1]; saw " + ", ".join(seen))


def dtype_device(j: Judge, cid: str, dtype: str, device: str) -> None:
    rec = j.record(cid)
    if rec.get("status") != "ok" or rec["out"]["kind"] != "tensor":
        return  # the missing output is reported by the property that needed it
    got = rec["out"]
    j.expect("dtype", got["dtype"] == dtype, f"expected dtype {dtype}, got {got['dtype']}")
    j.expect("device", got["device"] == device.split(":")[0], f"expected the output on {device}, got {got['device']}")


def cuda_note(j: Judge) -> None:
    """CPU-only grading cannot test the CUDA path; say so instead of failing."""
    if j.plan.device == "cpu":
        why = "CUDA is not available on this machine" if not j.plan.info.get("cuda_available") else "graded with --device cpu"
        j.skip("cuda", f"{why}: device handling was checked on CPU only")


def unchanged_input(j: Judge, cid: str, input_name: str) -> None:
    after = j.array(cid, "after/0")
    if after is None:
        return
    j.expect(
        "input unchanged",
        np.array_equal(after, j.input_array(input_name)),
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
    student, reference = t.get("student") or [], t.get("reference") or []
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
@scenario()
def read_answer(value) -> dict:
    """Scenario: report a student's answer variable as plain JSON (numbers, strings, lists of them)."""
    try:
        json.dumps(value)
        return {"answer": value}
    except TypeError:
        return {"answer_type": type(value).__name__}


def answer_check(name: str, variable: str, accepted, why: str):
    """A check that an answer variable holds one of ``accepted`` (compared after normalising case and spaces).

    The answers are public in the book behind a toggle; the practice questions are graded for
    engagement and feedback, not secrecy.
    """
    from . import Check

    norm = lambda v: v.strip().lower() if isinstance(v, str) else v  # noqa: E731
    accepted_n = [norm(a) for a in accepted]

    def build(plan, rng):
        plan.call("answer", scenario="autograde.checks.properties:read_answer")

    def judge(j):
        why_missing = j.problem("answer")
        if why_missing:
            j.fail("answer", why_missing.replace("is not implemented yet", "has no answer yet"))
            return
        if j.value("answer", "answer_type"):
            j.fail("answer", f"{variable} should be a plain value such as 'b' or 0.3, not a {j.value('answer', 'answer_type')}")
            return
        got = j.value("answer", "answer")
        j.expect("answer", norm(got) in accepted_n, f"{variable} = {got!r} is not right: {why}")

    return Check(name, variable, build, judge, f"practice question: {variable}")


# --- shared by every dropout variant --------------------------------------------------------------
def judge_randomness(j, fresh_ids, wide_ids, generator_ids, p_fresh=0.3, p_wide=0.8, to_mask=lambda a, cid: a == 0):
    """Independence across rows and columns, freshness across calls, and generator reproducibility.

    ``to_mask`` turns a call's output into the boolean 'dropped' mask.
    """
    a_id, b_id = fresh_ids
    a, b = j.output("fresh mask each call", a_id), j.output("fresh mask each call", b_id)
    if a is None or b is None:
        return
    a, b = to_mask(a, a_id), to_mask(b, b_id)
    independent(
        j, "fresh mask each call", a, b, p_fresh, "two calls' masks",
        "the same mask comes back every call (is a seed set inside the function, or a mask cached?)",
    )
    for p, cid in ((p_fresh, a_id), (p_wide, wide_ids)):
        arr = j.output(f"rows independent at p={p}", cid)
        if arr is None:
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
    g1, g2, g3 = (j.output("generator honoured", cid) for cid in generator_ids)
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


def judge_gradient(j, cid, expected_fn, what):
    """``expected_fn(out, upstream)`` gives the gradient a correct implementation produces."""
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
    j.expect(what, np.allclose(grad, expected, rtol=1e-5, atol=1e-6), "the gradient with respect to x should be the upstream gradient masked (and scaled) exactly like the forward pass")
