"""Checks for assignment 09_cost: ``packed_mask``, ``unpack_mask``, ``lean_dropout`` and the practice questions.

Contracts (p is the drop probability, q = 1 - p the keep probability):

- ``packed_mask(shape, p, generator=None, device=None)``: a dropout keep-mask of ``shape`` (a tuple, list or
  ``torch.Size``), bit-packed: a 1-D ``torch.uint8`` tensor of exactly ceil(numel / 8) bytes on ``device``
  (the CPU when None). Entry k of the mask, in row-major order, is bit k % 8 (value 2**(k % 8)) of byte
  k // 8, the order of ``np.packbits(m.ravel(), bitorder="little")``. A bit is 1 (kept) with probability q
  and 0 (dropped) with probability p, independently for every entry and afresh on every call; the unused
  high bits of the last byte are 0; random numbers come from ``generator`` when one is given, otherwise from
  PyTorch's global random state; p = 0 keeps
  every entry and p = 1 drops every entry; ``ValueError`` for p outside [0, 1].
- ``unpack_mask(packed, shape)``: the float32 tensor of ``shape`` on ``packed``'s device whose entry k is
  bit k % 8 of byte k // 8 (1.0 kept, 0.0 dropped); the unused bits of the last byte are ignored, whatever
  they hold; ``packed`` is not modified; ``ValueError`` when ``packed`` is not a 1-D tensor of exactly
  ceil(numel / 8) bytes.
- ``lean_dropout(x, p, training=True, generator=None)``: inverted dropout through a
  ``torch.autograd.Function`` (``LeanDropout``) that keeps only a seed for the backward pass. In training it
  returns x * m / q, with m a fresh Bernoulli(q) keep-mask of x's shape drawn from a private
  ``torch.Generator`` on x's device, seeded with one integer drawn from ``generator`` (or from PyTorch's
  global generator when None). The backward pass draws the same mask again from that seed and returns
  m / q * upstream, also after other random numbers were drawn and when several calls wait for their
  backward pass. Autograd keeps at most ``KEPT_LIMIT`` bytes of tensors per call, whatever the size of x
  (no mask, no input, no generator state). p = 1 gives zeros and a zero gradient (never NaN); evaluation
  (``training=False``) returns x; ``ValueError`` for p outside [0, 1]; dtype and device kept; x not
  modified; PyTorch's global random state is not re-seeded.

Contract clause -> check.property:

=================================================================  ===========================================================
``packed_mask``: a 1-D uint8 tensor                                packed_mask.contract: returns a tensor, dtype uint8
... of exactly ceil(numel / 8) bytes, for tuples and torch.Size    packed_mask.contract: packed size
... on ``device`` (CPU by default)                                 packed_mask.contract: device, default device
bit k % 8 of byte k // 8                                           packed_mask.contract: bit order
bits 1 with probability q                                          packed_mask.contract: drop rate at p=0.1, 0.3, 0.8
unused high bits of the last byte are 0                            packed_mask.contract: unused bits are zero
p = 0 keeps every entry, p = 1 drops every entry                   packed_mask.contract: p=0 keeps everything, p=1 drops everything
ValueError outside [0, 1]                                          packed_mask.contract: ValueError outside [0, 1]
independent entries (rows, columns, bits of a byte)                packed_mask.randomness: rows / columns independent at p=0.3, 0.8
afresh on every call                                               packed_mask.randomness: fresh mask each call
random numbers from ``generator``                                  packed_mask.randomness: generator honoured, generator seed matters
... otherwise from PyTorch's global random state                   packed_mask.randomness: global random state without a generator
``unpack_mask``: float32, ``shape``, packed's device               unpack_mask.contract: returns a tensor, dtype, shape, device
entry k = bit k % 8 of byte k // 8                                 unpack_mask.contract: round trip, bit order
the last partial byte                                              unpack_mask.contract: round trip (shapes of 7, 15, 120, 999,999 entries)
unused bits ignored                                                unpack_mask.contract: unused bits ignored
ValueError for the wrong number of bytes                           unpack_mask.contract: ValueError for a wrong size
ValueError for a packed tensor that is not 1-D                     unpack_mask.contract: ValueError for a packed tensor that is not 1-D
``packed`` not modified; torch.Size; 1 entry; 3-D                  unpack_mask.more: input unchanged, torch.Size shape, one entry, 3-D shape
``lean_dropout``: x * m / q, m ~ Bernoulli(q)                      lean_dropout.contract: kept values are x / q, drop rate at p=0.1, 0.3, 0.8
p = 0, p = 1 (zeros, never NaN), evaluation returns x              lean_dropout.contract: p=0 is the identity, p=1 gives zeros, evaluation returns x
gradient m / q * upstream with the forward's mask                  lean_dropout.contract: gradient is m / q * upstream with the forward's mask
zero gradient at p = 1                                             lean_dropout.contract: gradient at p=1 is zero, not NaN
ValueError, dtype, device                                          lean_dropout.contract: ValueError outside [0, 1], dtype, device
a torch.autograd.Function                                          lean_dropout.memory: built on a torch.autograd.Function
keeps at most KEPT_LIMIT bytes whatever the size of x              lean_dropout.memory: saves no mask (small x), saves no mask (large x)
the same mask after other random draws                             lean_dropout.memory: gradient uses the forward's mask after other random draws
several calls waiting for backward                                 lean_dropout.memory: each call regenerates its own mask
x not modified; float64; gradient at evaluation and p = 0          lean_dropout.safety: input unchanged, float64 preserved, gradient at evaluation / p=0
fresh, independent masks; ``generator`` honoured                   lean_dropout.safety: fresh mask each call, rows / columns independent, generator honoured
the seed from PyTorch's global generator when generator is None    lean_dropout.safety: global random state without a generator
global random state not re-seeded                                  lean_dropout.safety: global random state untouched
=================================================================  ===========================================================

Statistics. Drop rates are binomial tests (``Judge.binomial``); independence and freshness are exact conditional
tests against the masks' *observed* drop rates (``properties.independent``: given the two masks' counts, their
overlap is hypergeometric whatever the rate), so a wrong rate costs only the drop-rate property. Each has a
false-failure probability of at most 1e-7, and no check runs more than ten (``autograde.stats``), so a correct
answer fails a check by chance with probability at most 1e-6. Everything else is exact.

What the memory check trusts. The scenario :func:`lean_memory_scenario` runs in the student's kernel and
reports three kinds of tensors kept after the forward pass: those autograd saves (seen by
``torch.autograd.graph.saved_tensors_hooks``, whatever saves them), those held as attributes of the
backward graph's nodes (``ctx.mask = mask``), and tensors that appeared during the call and are still
alive anywhere else (a global cache, found with ``gc``). These are self-reported facts, like every
scenario's: a submission that patches the checks module could lie about them, which the grader's
isolation does not prevent; the gradients it reports are judged from the arrays, as everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from ..probe import generator, plan_device, scenario, size, tensor
from . import Check
from . import properties as prop

RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 a swapped keep/drop probability would be invisible
BIG = (1000, 1000)  # a million entries: the drop-rate interval is about +-0.25 percentage points at p = 0.3
ODD_BIG = (999, 1001)  # 999,999 entries: the last byte holds 7 of them
WIDE = (512, 2048)  # independence tests: a shared or repeated mask agrees on 100% instead of p^2 + q^2
KEPT_LIMIT = 64  # bytes of tensors lean_dropout may keep per call: a seed, with room to spare
LEAN_SMALL, LEAN_BIG = (64, 128), (512, 1024)  # 8,192 and 524,288 entries: a mask grows 64-fold, a seed does not
LEAN_RATE = (400, 1000)  # lean_dropout's drop-rate tests: an interval of about +-0.35 percentage points at p = 0.3
LEAN_WIDE = (256, 1024)  # lean_dropout's independence tests: a repeated mask agrees on 100%, independent ones on 58%
RTOL = 1e-5


def numel(shape) -> int:
    return int(math.prod(shape))


def packed_bytes(shape) -> int:
    return (numel(shape) + 7) // 8


def unpack_little(packed: np.ndarray, n: int) -> np.ndarray:
    """The first n bits of ``packed`` in the contract's order, as booleans (True = kept)."""
    return np.unpackbits(packed.astype(np.uint8), count=n, bitorder="little").astype(bool)


def pack_little(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask.reshape(-1).astype(bool), bitorder="little")


def _bits(b: int) -> str:
    return f"0b{b:08b}"


def judge_randomness(j, masks: dict, p_wide: float = 0.8, packed: bool = False) -> None:
    """Fresh masks across calls a and b, rows and columns independent in a (p = 0.3) and c (p_wide), and the
    generator honoured by g1, g2 (seeded alike) and g3 (another seed). ``masks``: call id -> dropped (2-D bool).
    Independence is judged exactly against the masks' *observed* drop rates (``properties.independent``), so a
    wrong drop rate costs only the drop-rate property."""
    prop.independent(j, "fresh mask each call", masks["a"], masks["b"], 0.3, "two calls' masks",
                     "the same mask comes back every call (is a seed set inside the function, or a mask cached?)")
    for p, cid in ((0.3, "a"), (p_wide, "c")):
        m = masks[cid]
        prop.independent(j, f"rows independent at p={p}", m[0::2], m[1::2], p, "neighbouring rows",
                         "one mask seems to be shared by every row (draw one value per entry of the whole shape)")
        whole_rows = bool((m == m[:, :1]).all())
        whole_bytes = packed and m.size % 8 == 0 and bool((m.reshape(-1, 8) == m.reshape(-1, 8)[:, :1]).all())
        prop.independent(j, f"columns independent at p={p}", m[:, 0::2], m[:, 1::2], p, "neighbouring entries",
                         "whole bytes are kept or dropped together (draw one value per entry, then pack; not one per byte)"
                         if whole_bytes and not whole_rows else "whole rows are kept or dropped together (draw one value per entry)")
    if j.expect("generator honoured", np.array_equal(masks["g1"], masks["g2"]),
                "two calls with generators seeded alike gave different masks: draw from the generator argument "
                "(torch.rand(..., generator=generator)) instead of the global random state"):
        prop.independent(j, "generator seed matters", masks["g1"], masks["g3"], 0.3, "masks from differently seeded generators",
                         "the generator's seed seems to be ignored")


# ---------------------------------------------------------------------------------------------
# packed_mask
# ---------------------------------------------------------------------------------------------
SHAPE_CASES = {"s15": (3, 5), "s7": (7,), "s120": (4, 5, 6)}  # 15, 7 and 120 entries: 2, 1 and 15 bytes


def _packed_contract_plan(plan, rng):
    for p in RATES:
        plan.call(f"r{p}", list(BIG), p, device=plan_device())
    for cid, shape in SHAPE_CASES.items():
        plan.call(f"{cid}_p0", list(shape), 0.0, device=plan_device())
        plan.call(f"{cid}_p1", list(shape), 1.0, device=plan_device())
    plan.call("odd", list(ODD_BIG), 0.3, device=plan_device())
    plan.call("size", size(7, 3), 0.3, device=plan_device())
    plan.call("neg", [10], -0.1, device=plan_device())
    plan.call("big", [10], 1.5, device=plan_device())
    plan.call("default", [3, 4], 0.3)


def _packed_format(j, cid, shape) -> np.ndarray | None:
    """The output of ``cid`` if it is a 1-D uint8 tensor of ceil(numel / 8) bytes, else None (the property that
    needs it reports why)."""
    if j.problem(cid):
        return None
    arr = j.array(cid)
    if prop.out_dtype(j, cid) != "torch.uint8" or arr is None or arr.dtype != np.uint8 or arr.shape != (packed_bytes(shape),):
        return None
    return arr


def _packed_seen(j, cid) -> str:
    """What call ``cid`` gave instead of a packed mask, in words."""
    why = j.problem(cid)
    if why:
        return why
    arr = j.array(cid)
    return "no tensor" if arr is None else f"{prop.out_dtype(j, cid)} of shape {tuple(arr.shape)}"


def _judge_size(j, calls) -> None:
    """``calls``: (call id, shape). The packed size property, with the usual mistakes named."""
    for cid, shape in calls:
        why, arr = j.problem(cid), j.array(cid)
        if why or arr is None:
            j.fail("packed size", f"no packed mask came back for shape {tuple(shape)}: {why or 'no tensor'}")
            return
        got = list(arr.shape)
        n, want = numel(shape), packed_bytes(shape)
        if got == [want]:
            continue
        if got == [n // 8] and n % 8:
            hint = f"{n // 8} bytes: the last partial byte was lost (pad the flat mask with zeros to a multiple of 8 before packing)"
        elif got == [n] or got == list(shape):
            hint = "one byte per entry: that is a bool mask, not a packed one (8 entries go into each byte)"
        elif len(got) != 1:
            hint = f"shape {got}: return a flat (1-D) tensor of bytes"
        else:
            hint = f"{got[0]} bytes"
        j.fail("packed size", f"a mask of shape {tuple(shape)} has {n} entries and packs into ceil({n} / 8) = {want} bytes; got {hint}")
        return
    j.ok("packed size")


def _packed_contract_judge(j):
    cid = f"r{RATES[1]}"
    if prop.tensor_out(j, "returns a tensor", cid) is None:
        return
    j.ok("returns a tensor")
    dtype, device = prop.out_dtype(j, cid), prop.out_device(j, cid)
    j.expect("dtype uint8", dtype == "torch.uint8", f"expected dtype torch.uint8 (8 mask entries per byte), got {dtype}")
    j.expect("device", device == j.plan.device.split(":")[0], f"expected the packed mask on {j.plan.device}, got {device}")
    if prop.tensor_out(j, "default device", "default") is not None:
        where = prop.out_device(j, "default")
        j.expect("default device", where == "cpu", f"with device=None the packed mask belongs on the CPU, got {where}")
    prop.cuda_note(j)
    calls = [(f"r{p}", BIG) for p in RATES] + [(f"{c}_p{v}", s) for c, s in SHAPE_CASES.items() for v in (0, 1)]
    calls += [("odd", ODD_BIG), ("size", (7, 3))]
    _judge_size(j, calls)
    for p in RATES:
        arr = _packed_format(j, f"r{p}", BIG)
        if arr is None:
            j.fail(f"drop rate at p={p}", f"expected a packed mask of {packed_bytes(BIG)} uint8 bytes to read; got "
                                          f"{_packed_seen(j, f'r{p}')}")
            continue
        prop.drop_rate(j, f"drop rate at p={p}", ~unpack_little(arr, numel(BIG)), p)

    # p = 0: every entry kept, so the bytes are fully determined: they reveal the bit order and the padding.
    order_ok = unused_ok = keeps_ok = True
    order_msg = unused_msg = keeps_msg = ""
    for cid, shape in SHAPE_CASES.items():
        arr = _packed_format(j, f"{cid}_p0", shape)
        if arr is None:
            keeps_ok, keeps_msg = False, (f"no packed mask of {packed_bytes(shape)} uint8 bytes came back for shape {shape} at "
                                          f"p = 0: {_packed_seen(j, f'{cid}_p0')}")
            continue
        n = numel(shape)
        little = pack_little(np.ones(n, bool))
        big_endian = np.packbits(np.ones(n, bool), bitorder="big")
        if np.array_equal(arr, little):
            continue
        last = n - 8 * (n // 8)
        if np.array_equal(arr, big_endian) and last:
            order_ok = False
            order_msg = (f"at p = 0 every entry is kept, so a mask of shape {shape} ({n} entries) packs into bytes "
                         f"{little.tolist()}, the last one {_bits(int(little[-1]))} (entries {8 * (n // 8)} to {n - 1} in bits 0 to "
                         f"{last - 1}); got {arr.tolist()}, the last one {_bits(int(arr[-1]))}: the bits seem to be in big-endian "
                         "order (entry k in bit 7 - k % 8, NumPy's default bitorder='big'); entry k goes to bit k % 8, value "
                         "2**(k % 8) (np.packbits(..., bitorder='little'))")
        elif np.array_equal(arr[:-1], little[:-1]) and (int(arr[-1]) & int(little[-1])) == int(little[-1]):
            unused_ok = False
            unused_msg = (f"the unused high bits of the last byte must be 0: at p = 0 a mask of shape {shape} ends in "
                          f"{_bits(int(little[-1]))} ({n - 8 * (n // 8)} entries), got {_bits(int(arr[-1]))} (pad with zeros, not with "
                          "random bits or ones)")
        else:
            keeps_ok = False
            keeps_msg = (f"at p = 0 every bit of the {n} entries must be 1 (kept); for shape {shape} expected bytes "
                         f"{little.tolist()}, got {arr.tolist()}")
    odd = _packed_format(j, "odd", ODD_BIG)
    if odd is None:
        unused_ok = False
        unused_msg = unused_msg or (f"expected a packed mask of {packed_bytes(ODD_BIG)} uint8 bytes for shape {ODD_BIG}, whose "
                                    f"last byte's unused bit must be 0; got {_packed_seen(j, 'odd')}")
    elif order_ok and int(odd[-1]) >> 7:  # (big-endian order puts an entry there: reported above)
        unused_ok = False
        unused_msg = unused_msg or (f"a mask of shape {ODD_BIG} has {numel(ODD_BIG)} entries, so bit 7 of its last byte is unused "
                                    "and must be 0; it was 1 (pad with zeros, not with random bits)")
    j.expect("bit order", order_ok, order_msg)
    j.expect("unused bits are zero", unused_ok, unused_msg)
    j.expect("p=0 keeps everything", keeps_ok, keeps_msg)
    drops = []
    for cid, shape in SHAPE_CASES.items():
        arr = _packed_format(j, f"{cid}_p1", shape)
        if arr is None or arr.any():
            drops.append(f"shape {shape}: " + ("no packed mask of the right size" if arr is None else f"bytes {arr.tolist()[:4]}"))
    j.expect("p=1 drops everything", not drops, "at p = 1 every entry is dropped, so every byte must be 0; got " + "; ".join(drops))
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big"], "ValueError", [-0.1, 1.5])


def _packed_randomness_plan(plan, rng):
    seed = int(rng.integers(2**31))
    for cid, p in (("a", 0.3), ("b", 0.3), ("c", 0.8)):
        plan.call(cid, list(WIDE), p, device=plan_device())
    plan.call("g1", list(WIDE), 0.3, generator=generator(seed), device=plan_device())
    plan.call("g2", list(WIDE), 0.3, generator=generator(seed), device=plan_device())
    plan.call("g3", list(WIDE), 0.3, generator=generator(seed + 1), device=plan_device())
    prop.global_seed(plan, ("s1", "s2"), list(WIDE), 0.3, device=plan_device())


def _packed_randomness_judge(j):
    masks = {}
    for cid in ("a", "b", "c", "g1", "g2", "g3"):
        if j.problem(cid):
            j.fail("returns a packed mask", j.problem(cid))
            return
        arr = _packed_format(j, cid, WIDE)
        if arr is None:
            j.fail("returns a packed mask", f"expected a 1-D torch.uint8 tensor of {packed_bytes(WIDE)} bytes for shape {WIDE}; "
                   f"got {_packed_seen(j, cid)}")
            return
        masks[cid] = ~unpack_little(arr, numel(WIDE)).reshape(WIDE)  # True = dropped
    j.ok("returns a packed mask")
    judge_randomness(j, masks, packed=True)
    prop.judge_global_seed(j, ("s1", "s2"), (packed_bytes(WIDE),), to_mask=lambda a: a)


# ---------------------------------------------------------------------------------------------
# unpack_mask
# ---------------------------------------------------------------------------------------------
UNPACK_CASES = {"u7": (7,), "u15": (3, 5), "u120": (4, 5, 6), "ubig": ODD_BIG}


def _unpack_contract_plan(plan, rng):
    for cid, shape in UNPACK_CASES.items():
        keep = rng.random(numel(shape)) >= 0.3
        plan.inputs[f"{cid}_mask"] = keep.reshape(shape).astype(np.float32)
        plan.inputs[f"{cid}_packed"] = pack_little(keep)
        plan.call(cid, tensor(f"{cid}_packed", "uint8"), list(shape))
    # The unused bit of a 999,999-entry mask's last byte set to 1: unpacking must ignore it.
    dirty = plan.inputs["ubig_packed"].copy()
    dirty[-1] |= np.uint8(0x80)
    plan.inputs["dirty_packed"] = dirty
    plan.call("dirty", tensor("dirty_packed", "uint8"), list(ODD_BIG))
    plan.call("short", tensor("u120_packed", "uint8"), [11, 11])  # 121 entries need 16 bytes, 15 given
    plan.call("long", tensor("u15_packed", "uint8"), [2, 4])  # 8 entries need 1 byte, 2 given
    plan.inputs["packed2d"] = plan.inputs["u15_packed"].reshape(1, -1)  # the right number of bytes, but 2-D
    plan.call("flat2d", tensor("packed2d", "uint8"), [3, 5])


def _judge_unpacked(j, name, cid, shape, mask_name) -> None:
    """The unpacked mask must equal the mask the plan packed; name the usual mistakes."""
    out = prop.tensor_out(j, name, cid)
    if out is None:
        return
    want = j.input_array(mask_name)
    if out.shape != tuple(shape):
        n = numel(shape)
        lost = out.size == 8 * (n // 8) and n % 8
        j.fail(name, f"expected shape {tuple(shape)}, got {out.shape}" + (": the last partial byte was lost" if lost else ""))
        return
    if np.array_equal(out, want):
        j.ok(name)
        return
    n = numel(shape)
    packed = j.input_array(mask_name.replace("_mask", "_packed"))
    big_endian = np.unpackbits(packed, count=n, bitorder="big").reshape(shape).astype(np.float32)
    wrong = np.flatnonzero(out.reshape(-1) != want.reshape(-1))
    if np.array_equal(out, big_endian):
        j.fail(name, "the bits were read in big-endian order (bit 7 first, NumPy's default): entry k is bit k % 8 of byte k // 8, "
                     "that is (byte >> (k % 8)) & 1 (np.unpackbits(..., bitorder='little'))")
    elif n % 8 and wrong.size and wrong.min() >= 8 * (n // 8):
        j.fail(name, f"only the entries from {8 * (n // 8)} on are wrong: the last partial byte was lost (unpack every byte, then keep "
                     f"the first {n} bits)")
    elif np.array_equal(out, 1 - want):
        j.fail(name, "every entry is flipped: a set bit means kept (1.0), a clear bit dropped (0.0)")
    elif not np.isin(out, (0.0, 1.0)).all():
        j.fail(name, f"entries must be 0.0 or 1.0; saw values such as {np.unique(out)[:5].tolist()}")
    else:
        j.fail(name, f"{wrong.size} of {n} entries differ from the packed mask (entry k is bit k % 8 of byte k // 8, rows in "
                     "row-major order)")


def _unpack_contract_judge(j):
    first = prop.tensor_out(j, "returns a tensor", "u15")
    if first is None:
        return
    j.ok("returns a tensor")
    prop.dtype_device(j, "u15", "torch.float32", j.plan.device)
    prop.cuda_note(j)
    for cid, shape in UNPACK_CASES.items():
        _judge_unpacked(j, f"round trip ({numel(shape):,} entries)", cid, shape, f"{cid}_mask")
    _judge_unpacked(j, "unused bits ignored", "dirty", ODD_BIG, "ubig_mask")
    problems = []
    for cid, what in (("short", "15 bytes for a (11, 11) mask (121 entries need 16)"), ("long", "2 bytes for a (2, 4) mask (8 entries need 1)")):
        if not j.raised(cid, "ValueError"):
            problems.append(f"{what}: {prop.raised_what(j, cid)}")
    j.expect("ValueError for a wrong size", not problems,
             "expected ValueError when packed does not hold exactly ceil(numel / 8) bytes; saw " + "; ".join(problems))
    j.expect("ValueError for a packed tensor that is not 1-D", j.raised("flat2d", "ValueError"),
             "expected ValueError when packed is not a 1-D tensor (here a (1, 2) tensor holding the 2 bytes a (3, 5) mask needs); "
             f"saw {prop.raised_what(j, 'flat2d')}: check packed.dim() == 1 as well as the number of bytes")


def _unpack_more_plan(plan, rng):
    cases = {"one": (1,), "cube": (3, 4, 5), "size": (6, 7)}
    for cid, shape in cases.items():
        keep = rng.random(numel(shape)) >= 0.3
        if cid == "one":
            keep[:] = True
        plan.inputs[f"{cid}_mask"] = keep.reshape(shape).astype(np.float32)
        plan.inputs[f"{cid}_packed"] = pack_little(keep)
    plan.call("one", tensor("one_packed", "uint8"), [1])
    plan.call("cube", tensor("cube_packed", "uint8"), [3, 4, 5])
    plan.call("size", tensor("size_packed", "uint8"), size(6, 7))


def _unpack_more_judge(j):
    _judge_unpacked(j, "one entry", "one", (1,), "one_mask")
    _judge_unpacked(j, "3-D shape", "cube", (3, 4, 5), "cube_mask")
    _judge_unpacked(j, "torch.Size shape", "size", (6, 7), "size_mask")
    why, after, before = j.problem("cube"), j.array("cube", "after/0"), j.input_array("cube_packed")
    if why:
        j.fail("input unchanged", why)
    elif after is None or after.shape != before.shape:
        j.fail("input unchanged", "the grader got no usable record of the packed tensor after the call, so it cannot tell "
                                  "whether it was modified")
    else:
        j.expect("input unchanged", np.array_equal(after, before),
                 "the packed tensor was modified: read its bits without changing it in place (no packed >>= 1)")


# ---------------------------------------------------------------------------------------------
# lean_dropout
# ---------------------------------------------------------------------------------------------
def _lean_contract_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, LEAN_RATE)
    plan.inputs["x_small"] = prop.nonzero_input(rng, (200, 300))
    plan.inputs["g"] = rng.normal(size=LEAN_WIDE).astype(np.float32)
    plan.inputs["xw"] = prop.nonzero_input(rng, LEAN_WIDE)
    plan.inputs["g_small"] = rng.normal(size=(200, 300)).astype(np.float32)
    for p in RATES:
        plan.call(f"t{p}", tensor("x"), p)
    plan.call("e0.3", tensor("x"), 0.3, training=False)
    plan.call("t0", tensor("x_small"), 0.0)
    plan.call("t1", tensor("x_small"), 1.0)
    plan.call("e1", tensor("x_small"), 1.0, training=False)
    plan.call("neg", tensor("x_small"), -0.1)
    plan.call("big", tensor("x_small"), 1.2)
    plan.call("neg_eval", tensor("x_small"), -0.1, training=False)
    plan.call("grad", tensor("xw", requires_grad=True), 0.3, backward="g")
    plan.call("grad_p1", tensor("x_small", requires_grad=True), 1.0, backward="g_small")


def _kept_values(j, name, out, x, p) -> None:
    kept = out != 0
    q = 1 - p
    got, want = out[kept], x[kept]
    if np.allclose(got, want / q, rtol=RTOL, atol=0):
        j.ok(name)
    elif np.array_equal(got, want):
        j.fail(name, f"kept values equal x: inverted dropout divides the survivors by q = 1 - p = {q:.1f}")
    elif np.allclose(got, want * q, rtol=RTOL):
        j.fail(name, f"kept values equal x * (1 - p): multiply by 1 / q, not by q (expected x / {q:.1f})")
    elif np.allclose(got, want / p, rtol=RTOL):
        j.fail(name, f"kept values equal x / p: divide by the keep probability q = 1 - p = {q:.1f}")
    else:
        j.fail(name, f"entries that survive must equal x / (1 - p) = x / {q:.1f}")


def judge_lean_gradient(j, name, grad, out, g, q_power=1) -> None:
    """``grad`` must be g * m / q**q_power with m read from the forward output (x has no zeros)."""
    q = np.float32(0.7)
    if out.shape != g.shape:
        j.fail(name, f"the output has shape {out.shape}, expected {g.shape}, so its mask cannot be read")
        return
    if grad.shape != g.shape or grad.dtype.kind != "f":
        j.fail(name, f"x's gradient came back as {grad.dtype} of shape {grad.shape}, expected floats of shape {g.shape}")
        return
    keep = out != 0
    want = g * keep / q**q_power
    if np.allclose(grad, want, rtol=RTOL, atol=1e-6):
        j.ok(name)
    elif np.isnan(grad).any():
        j.fail(name, "the gradient contains NaN")
    elif np.allclose(grad, g / q**q_power, rtol=RTOL, atol=1e-6):
        j.fail(name, "the gradient was not masked: a dropped entry's gradient must be 0 (m / q * upstream)")
    elif np.allclose(grad, g * keep, rtol=RTOL, atol=1e-6):
        j.fail(name, "the gradient is m * upstream: divide by q as the forward pass does (m / q * upstream)")
    else:
        nonzero = grad != 0
        agree = float((nonzero == keep).mean())
        if agree < 0.9:
            j.fail(name, f"the backward pass used a different mask from the forward pass: the gradient is non-zero exactly where "
                         f"the output is at only {prop.pct(agree)} of positions (a new seed, or the global generator, which has moved "
                         "on since the forward pass?): seed a private torch.Generator with the saved seed in both passes")
        else:
            j.fail(name, "the gradient with respect to x must be m / q * upstream, with the forward pass's mask m")


def _lean_gradient(j, cid, name, g_name, p) -> None:
    why = j.problem(cid)
    if why:
        j.fail(name, why)
        return
    g = j.input_array(g_name)
    out = prop.tensor_out(j, name, cid, g.shape)
    if out is None:
        return
    err = j.record(cid).get("backward_error")
    if err is not None or j.array(cid, "grad/0") is None:
        hint = ("return x * 0.0, which stays connected to x, rather than torch.zeros_like(x)" if p == 1.0 else
                "return the output of LeanDropout.apply (no .detach(), no torch.no_grad())")
        message = err.get("exc_message") if isinstance(err, dict) else None
        failed = f" (backward failed: {message if isinstance(message, str) else 'an error'})" if err is not None else ""
        j.fail(name, f"x received no gradient{failed}: {hint}")
        return
    grad = j.array(cid, "grad/0")
    if p == 1.0:
        if grad.shape != g.shape or grad.dtype.kind != "f":
            j.fail(name, f"x's gradient came back as {grad.dtype} of shape {grad.shape}, expected floats of shape {g.shape}")
            return
        if np.isnan(grad).any():
            j.fail(name, "at p = 1 the gradient contains NaN (m / q with q = 0): return a zero gradient when p = 1")
        else:
            j.expect(name, (grad == 0).all(), "at p = 1 every entry is dropped, so the gradient must be all zeros")
        return
    judge_lean_gradient(j, name, grad, out, g)


def _lean_contract_judge(j):
    x, xs = j.input_array("x"), j.input_array("x_small")
    first = prop.tensor_out(j, "returns a tensor", f"t{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    j.expect("shape", first.shape == x.shape, f"expected shape {x.shape}, got {first.shape}")
    prop.dtype_device(j, f"t{RATES[1]}", "torch.float32", j.plan.device)
    prop.cuda_note(j)
    for p in RATES:
        out = prop.tensor_out(j, f"drop rate at p={p}", f"t{p}", x.shape)
        if out is None:
            continue
        _kept_values(j, f"kept values are x / q at p={p}", out, x, p)
        prop.drop_rate(j, f"drop rate at p={p}", out == 0, p)
    ev = prop.tensor_out(j, "evaluation returns x", "e0.3", x.shape)
    if ev is not None:
        if ev.shape == x.shape and np.array_equal(ev, x):
            j.ok("evaluation returns x")
        elif ev.shape == x.shape and (ev == 0).any():
            j.fail("evaluation returns x", "with training=False entries were zeroed: dropout must not drop at evaluation")
        else:
            j.fail("evaluation returns x", "with training=False the output must equal x exactly (inverted dropout)")
    t0 = prop.tensor_out(j, "p=0 is the identity", "t0", xs.shape)
    if t0 is not None:
        j.expect("p=0 is the identity", t0.shape == xs.shape and np.allclose(t0, xs, rtol=1e-6, atol=0),
                 "at p = 0 nothing is dropped and q = 1: the training output must equal x")
    t1 = prop.tensor_out(j, "p=1 gives zeros, not NaN", "t1", xs.shape)
    if t1 is not None:
        if np.isnan(t1).any():
            j.fail("p=1 gives zeros, not NaN", "at p = 1 the output contains NaN (x * m / q with q = 0 gives 0 / 0): return zeros when p = 1")
        else:
            j.expect("p=1 gives zeros, not NaN", (t1 == 0).all(), "at p = 1 everything is dropped: the output must be all zeros")
    e1 = prop.tensor_out(j, "evaluation returns x at p=1", "e1", xs.shape)
    if e1 is not None:
        j.expect("evaluation returns x at p=1", e1.shape == xs.shape and np.array_equal(e1, xs),
                 "with training=False and p = 1 the output must still be x")
    prop.raises(j, "ValueError outside [0, 1]", ["neg", "big", "neg_eval"], "ValueError", [-0.1, 1.2, -0.1])
    _lean_gradient(j, "grad", "gradient is m / q * upstream with the forward's mask", "g", 0.3)
    _lean_gradient(j, "grad_p1", "gradient at p=1 is zero, not NaN", "g_small", 1.0)


# --- what the forward pass leaves behind ---------------------------------------------------------
def _tensor_objects():
    """Every tensor object the garbage collector tracks (torch tensors are tracked)."""
    import gc

    import torch

    return [o for o in gc.get_objects() if issubclass(type(o), torch.Tensor)]


def _graph_attributes(root, limit=64):
    """(node name, attribute path, tensor) for tensors held as attributes of the nodes reachable from ``root``."""
    import torch

    found, seen, stack = [], set(), [root]
    while stack and len(seen) < limit:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for key, value in getattr(node, "__dict__", {}).items():
            todo = [(key, value, 0)]
            while todo:
                path, v, depth = todo.pop()
                if isinstance(v, torch.Tensor):
                    found.append((type(node).__name__, path, v))
                elif depth < 3 and isinstance(v, (list, tuple)):
                    todo += [(f"{path}[{i}]", w, depth + 1) for i, w in enumerate(v[:32])]
                elif depth < 3 and isinstance(v, dict):
                    todo += [(f"{path}[{k!r}]", w, depth + 1) for k, w in list(v.items())[:32]]
        stack += [n for n, _ in getattr(node, "next_functions", ())]
    return found


def kept_after_forward(call, x):
    """Run ``call()`` (a forward pass on x) and report every tensor it leaves alive for the backward pass.

    Returns (output, records); a record is {"where", "dtype", "shape", "bytes"}, one per storage.
    """
    import torch

    records, keys = [], set()

    def add(where, t):
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key in keys or storage.nbytes() == 0:
            return
        keys.add(key)
        records.append({"where": where, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                        "bytes": int(storage.nbytes())})

    saved = []

    def pack(t):
        saved.append(t)  # kept only until this function returns
        return t

    before = _tensor_objects()  # strong references: no id can be reused while we compare
    known = {id(o) for o in before}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = call()
    if not isinstance(out, torch.Tensor):
        return out, records
    for t in saved:
        add("saved for backward (ctx.save_for_backward or an autograd operation)", t)
    for node, path, t in _graph_attributes(out.grad_fn):
        add(f"attribute {path} of {node}", t)
    out_storage = out.untyped_storage().data_ptr()
    for t in _tensor_objects():
        if id(t) in known or t is out or t is x or any(t is s for s in saved):
            continue
        if t.untyped_storage().data_ptr() in (out_storage, x.untyped_storage().data_ptr()):
            continue
        add("kept alive outside autograd (a global, a cache, a closure)", t)
    before.clear()  # drop the references taken for the comparison
    saved.clear()
    return out, records


def _disturb(device):
    """Draw random numbers from the global generators, as the rest of a training step would."""
    import torch

    torch.rand(1000)
    if device.type == "cuda":
        torch.rand(1000, device=device)


@scenario("out_big", "grad_big", "chain_y2", "chain_grad")
def lean_memory_scenario(fn, x_small, x_big, g_small, g_big, p=0.3):
    """Bytes kept by ``fn`` for two sizes of x, and gradients after other random draws and for two chained calls."""
    import warnings

    import torch

    facts = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a student's warnings, or torch's own, are not facts
        warm = x_small.detach().clone().requires_grad_(True)
        fn(warm, p).backward(g_small)  # first call: lazy initialisation is not a per-call cost
        for tag, x0, g in (("small", x_small, g_small), ("big", x_big, g_big)):
            x = x0.detach().clone().requires_grad_(True)
            out, records = kept_after_forward(lambda: fn(x, p), x)
            facts[f"kept_{tag}"] = records
            if not isinstance(out, torch.Tensor):
                facts["type"] = type(out).__name__
                return facts
            if tag == "big":
                node, custom = out.grad_fn, False
                seen = 0
                stack = [node]
                while stack and seen < 64:
                    n = stack.pop()
                    if n is None:
                        continue
                    seen += 1
                    custom |= isinstance(n, torch.autograd.function.BackwardCFunction)
                    stack += [m for m, _ in getattr(n, "next_functions", ())]
                facts["custom_function"] = bool(custom)
            _disturb(x.device)
            try:
                out.backward(g)
            except RuntimeError as exc:
                facts[f"backward_error_{tag}"] = str(exc)[:300]
                continue
            if tag == "big":
                facts["out_big"] = out.detach()
                if x.grad is not None:
                    facts["grad_big"] = x.grad
        x = x_small.detach().clone().requires_grad_(True)
        y1 = fn(x, p)
        y2 = fn(y1, p)
        _disturb(x.device)
        try:
            y2.backward(g_small)
            facts["chain_y2"] = y2.detach()
            if x.grad is not None:
                facts["chain_grad"] = x.grad
        except RuntimeError as exc:
            facts["backward_error_chain"] = str(exc)[:300]
    return facts


def _describe_kept(records, n) -> str:
    """What the kept tensors probably are, for a message."""
    parts = []
    for r in sorted(records, key=lambda r: -r["bytes"])[:3]:
        size = r["bytes"]
        if r["dtype"] == "bool" and size == n:
            what = "a bool mask"
        elif r["dtype"] in ("float32", "float64") and size >= 4 * n:
            what = "a float mask, the input x or the output"
        elif r["dtype"] == "uint8" and size == (n + 7) // 8:
            what = "a packed mask: smaller, but it still grows with x"
        elif r["dtype"] == "uint8" and r["shape"] in ([5056], [16]):
            what = "the generator's whole state (keep one integer seed instead)"
        else:
            what = "a tensor"
        parts.append(f"{r['dtype']} {tuple(r['shape'])}, {size:,} bytes, {r['where']}: {what}")
    return "; ".join(parts)


def _lean_memory_plan(plan, rng):
    for tag, shape in (("small", LEAN_SMALL), ("big", LEAN_BIG)):
        plan.inputs[f"x_{tag}"] = prop.nonzero_input(rng, shape)
        plan.inputs[f"g_{tag}"] = rng.normal(size=shape).astype(np.float32)
    plan.call("m", tensor("x_small"), tensor("x_big"), tensor("g_small"), tensor("g_big"),
              scenario="autograde.checks.cost:lean_memory_scenario")


def _kept_records(j, tag):
    """The scenario's records of kept tensors for x of size ``tag``, each with a non-negative int "bytes" (the
    other fields made safe to print), or None when the record is missing or malformed."""
    records = prop.fact(j, "m", f"kept_{tag}", list)
    if records is None:
        return None
    clean = []
    for r in records:
        size = r.get("bytes") if isinstance(r, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return None
        shape = r.get("shape")
        clean.append({"bytes": size, "dtype": str(r.get("dtype", "?")),
                      "shape": shape if isinstance(shape, list) and all(isinstance(d, int) for d in shape) else [],
                      "where": str(r.get("where", "?"))})
    return clean


def _no_record(what: str) -> str:
    return (f"the grader got no usable record of {what} from the notebook (the scenario's facts are missing or malformed), "
            "so this property cannot be judged: did the call finish normally?")


def _lean_memory_judge(j):
    why = j.problem("m")
    if why:
        j.fail("saves no mask", why)
        return
    returned = prop.fact(j, "m", "type", str)
    if returned:
        j.fail("saves no mask", f"lean_dropout returned a {returned}, expected a torch.Tensor")
        return
    custom = prop.fact(j, "m", "custom_function", bool)
    j.expect("built on a torch.autograd.Function", bool(custom),
             _no_record("the output's backward graph") if custom is None else
             "no custom torch.autograd.Function in the output's backward graph: write class LeanDropout(torch.autograd.Function) "
             "with forward and backward, and return LeanDropout.apply(...)")
    for tag, shape in (("small", LEAN_SMALL), ("big", LEAN_BIG)):
        name = f"saves no mask ({numel(shape):,} entries)"
        records = _kept_records(j, tag)
        if records is None:
            j.fail(name, _no_record(f"the tensors kept for x of shape {shape}"))
            continue
        total = sum(r["bytes"] for r in records)
        j.expect(name, total <= KEPT_LIMIT,
                 f"for x of shape {shape} the forward pass kept {total:,} bytes of tensors for the backward pass (allowed: "
                 f"{KEPT_LIMIT}, whatever the size of x): {_describe_kept(records, numel(shape))}. Keep only the seed (a Python int "
                 "on ctx) and draw the mask again in backward")
    big, g_big = LEAN_BIG, j.input_array("g_big")
    name = "gradient uses the forward's mask after other random draws"
    err = prop.fact(j, "m", "backward_error_big", str)
    grad, out = j.array("m", "grad_big"), j.array("m", "out_big")
    if err:
        j.fail(name, f"backward failed: {err}")
    elif grad is None or out is None:
        j.fail(name, "x received no gradient: return the output of LeanDropout.apply (no .detach(), no torch.no_grad())")
    elif out.shape != big or out.dtype.kind != "f":
        j.fail(name, f"the output came back as {out.dtype} of shape {out.shape}, expected float32 of shape {big}")
    else:
        judge_lean_gradient(j, name, grad, out, g_big)
    name = "each call regenerates its own mask"
    err = prop.fact(j, "m", "backward_error_chain", str)
    grad, y2 = j.array("m", "chain_grad"), j.array("m", "chain_y2")
    g_small = j.input_array("g_small")
    if err:
        j.fail(name, f"with two calls waiting for their backward pass, backward failed: {err}")
    elif grad is None or y2 is None:
        j.fail(name, "with two calls chained (lean_dropout(lean_dropout(x, p), p)) x received no gradient")
    elif y2.shape != g_small.shape or grad.shape != g_small.shape or grad.dtype.kind != "f":
        j.fail(name, f"with two calls chained, the output ({y2.dtype}, shape {y2.shape}) or x's gradient ({grad.dtype}, shape "
                     f"{grad.shape}) is not a float tensor of x's shape {g_small.shape}")
    else:
        q = np.float32(0.7)
        want = g_small * (y2 != 0) / q / q
        j.expect(name, bool(np.allclose(grad, want, rtol=RTOL, atol=1e-6)),
                 "with two calls waiting for their backward pass (lean_dropout(lean_dropout(x, p), p)), x's gradient is not the "
                 "product of both masks / q**2: is the seed stored on the class or in a global, so the second call overwrites "
                 "the first's? Store it on ctx")


# --- the rest of the contract ----------------------------------------------------------------------
@scenario()
def rng_state_scenario(fn, x, p, seed):
    """Whether a call with ``generator=`` leaves PyTorch's global generators as they were."""
    import torch

    g = torch.Generator(device=x.device).manual_seed(int(seed))
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(x.device) if x.device.type == "cuda" else None
    out = fn(x, p, generator=g)
    facts = {"cpu_unchanged": bool(torch.equal(cpu, torch.get_rng_state())),
             "out_is_tensor": isinstance(out, torch.Tensor)}
    if cuda is not None:
        facts["cuda_unchanged"] = bool(torch.equal(cuda, torch.cuda.get_rng_state(x.device)))
    return facts


def _lean_safety_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["x"] = prop.nonzero_input(rng, LEAN_WIDE)
    plan.inputs["g"] = rng.normal(size=LEAN_WIDE).astype(np.float32)
    plan.inputs["x64"] = prop.nonzero_input(rng, (100, 100)).astype(np.float64)
    plan.inputs["g64"] = rng.normal(size=(100, 100))
    plan.call("inplace", tensor("x"), 0.3)
    plan.call("f64", tensor("x64", "float64", requires_grad=True), 0.3, backward="g64")
    plan.call("grad_eval", tensor("x", requires_grad=True), 0.3, training=False, backward="g")
    plan.call("grad_p0", tensor("x", requires_grad=True), 0.0, backward="g")
    plan.call("a", tensor("x"), 0.3)
    plan.call("b", tensor("x"), 0.3)
    plan.call("c", tensor("x"), 0.8)
    plan.call("g1", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, generator=generator(seed + 1))
    plan.call("rng", tensor("x"), 0.3, seed + 2, scenario="autograde.checks.cost:rng_state_scenario")
    prop.global_seed(plan, ("s1", "s2"), tensor("x"), 0.3)


def _lean_safety_judge(j):
    prop.unchanged_input(j, "inplace", "x")
    x64, g64 = j.input_array("x64"), j.input_array("g64")
    out64 = prop.tensor_out(j, "float64 preserved", "f64", x64.shape)
    if out64 is not None:
        dtype = prop.out_dtype(j, "f64")
        kept = out64 != 0
        grad = j.array("f64", "grad/0")
        ok = (dtype == "torch.float64" and out64.dtype == np.float64
              and np.allclose(out64[kept], x64[kept] / 0.7, rtol=1e-12, atol=0)
              and grad is not None and grad.dtype == np.float64 and grad.shape == g64.shape
              and np.allclose(grad, g64 * kept / 0.7, rtol=1e-12, atol=1e-15))
        j.expect("float64 preserved", ok,
                 f"a float64 input must give a float64 output, kept values x / q and gradient m / q * upstream to float64 precision; "
                 f"got {dtype} (is the mask made as float32 and the product cast, or q rounded to float32?)")
    g = j.input_array("g")
    for cid, name in (("grad_eval", "gradient at evaluation is the upstream gradient"), ("grad_p0", "gradient at p=0 is the upstream gradient")):
        why = j.problem(cid)
        grad = j.array(cid, "grad/0")
        if why:
            j.fail(name, why)
        elif "backward_error" in j.record(cid) or grad is None:
            j.fail(name, "x received no gradient (or backward failed): keep the computation in torch")
        elif grad.shape != g.shape or grad.dtype.kind != "f":
            j.fail(name, f"x's gradient came back as {grad.dtype} of shape {grad.shape}, expected floats of shape {g.shape}")
        else:
            j.expect(name, bool(np.allclose(grad, g, rtol=1e-6, atol=0)),
                     "nothing is dropped here, so x's gradient must equal the upstream gradient")
    masks = {}
    for cid in ("a", "b", "c", "g1", "g2", "g3"):
        out = prop.tensor_out(j, "fresh and independent masks", cid, j.input_array("x").shape)
        if out is None:
            return
        masks[cid] = out == 0
    judge_randomness(j, masks)
    prop.judge_global_seed(j, ("s1", "s2"), j.input_array("x").shape)
    why = j.problem("rng")
    if why:
        j.fail("global random state untouched", why)
    else:
        cpu, cuda = prop.fact(j, "rng", "cpu_unchanged", bool), prop.fact(j, "rng", "cuda_unchanged", bool, True)
        if cpu is None:
            j.fail("global random state untouched", _no_record("PyTorch's global random state after the call"))
        else:
            j.expect("global random state untouched", cpu and cuda,
                     "a call with generator= changed PyTorch's global random state: torch.manual_seed inside the function re-seeds "
                     "the whole program's generator; draw the seed from generator and the mask from a private "
                     "torch.Generator(device=x.device).manual_seed(seed)")


# ---------------------------------------------------------------------------------------------
# practice questions (chapter 9); the explanations are the chapter's toggled answers
# ---------------------------------------------------------------------------------------------
ANSWERS = [
    ("answer_q1", "c", "a (4, 5, 3) tensor has 60 entries, and ceil(60 / 8) = 8 bytes hold them"),
    ("answer_q2", "a", "5 = 2**0 + 2**2: bits 0 and 2 are set, and entry k is bit k % 8"),
    ("answer_q3", "b", "a counter-based generator's i-th number depends only on the key and the counter i"),
    ("answer_q4", "c", "8 bytes per entry (read x, write y) at 2e12 bytes per second"),
    ("answer_q5", "d", "the global generator has moved on, so the backward pass's mask is a different one"),
]


CHECKS = [
    Check("packed_mask.contract", "packed_mask", _packed_contract_plan, _packed_contract_judge,
          "uint8, ceil(numel / 8) bytes, bit order, unused bits zero, drop rate at p = 0.1, 0.3, 0.8, p = 0 and 1, ValueError"),
    Check("packed_mask.randomness", "packed_mask", _packed_randomness_plan, _packed_randomness_judge,
          "independent rows, columns and bits of a byte, a fresh mask each call, the generator honoured"),
    Check("unpack_mask.contract", "unpack_mask", _unpack_contract_plan, _unpack_contract_judge,
          "float32 0/1 of the given shape, bit order, the last partial byte, unused bits ignored, ValueError for a wrong size"),
    Check("unpack_mask.more", "unpack_mask", _unpack_more_plan, _unpack_more_judge,
          "one entry, a 3-D shape, a torch.Size, the packed tensor left unchanged"),
    Check("lean_dropout.contract", "lean_dropout", _lean_contract_plan, _lean_contract_judge,
          "kept values x / q, drop rate, evaluation, p = 0 and 1, ValueError, gradient with the forward's mask"),
    Check("lean_dropout.memory", "lean_dropout", _lean_memory_plan, _lean_memory_judge,
          f"a torch.autograd.Function keeping at most {KEPT_LIMIT} bytes whatever the size of x, the same mask after other random "
          "draws and for chained calls"),
    Check("lean_dropout.safety", "lean_dropout", _lean_safety_plan, _lean_safety_judge,
          "input untouched, float64, gradients at evaluation and p = 0, fresh and independent masks, the generator honoured, "
          "the global random state untouched"),
] + [
    prop.answer_check(f"{var}.cost", var, [letter], f"{hint} (chapter 9, Practice questions)")
    for var, letter, hint in ANSWERS
]
