"""Correct and buggy implementations of assignment 09's graded functions.

Each is source code defining ``packed_mask``, ``unpack_mask`` or ``lean_dropout`` (and whatever helpers it
needs), so that the same text can be run against the checks directly or pasted into the notebook's solution
cell, where ``math``, ``np``, ``torch`` and ``F`` are imported by the setup cell. A buggy one names the checks
that must catch it; a correct one must pass every check of its target.
"""

from tests.implementations.bernoulli_masks import Impl

CHECK = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
DEV = "    device = torch.device('cpu' if device is None else device)\n"


def _pm(key, body, fails=()):
    return Impl(key, "packed_mask", "def packed_mask(shape, p, generator=None, device=None):\n" + body, frozenset(fails))


def _um(key, body, fails=()):
    return Impl(key, "unpack_mask", "def unpack_mask(packed, shape):\n" + body, frozenset(fails))


def _ld(key, src, fails=()):
    return Impl(key, "lean_dropout", src, frozenset(fails))


PC, PR = {"packed_mask.contract"}, {"packed_mask.randomness"}
KEEP = "    n = math.prod(shape)\n    keep = torch.rand(n, generator=generator, device=device) >= p\n"

PACKED = [
    # --- correct, written differently -------------------------------------------------------------
    _pm("numpy_packbits", CHECK + DEV + KEEP
        + "    packed = np.packbits(keep.cpu().numpy(), bitorder='little')\n"
        "    return torch.from_numpy(packed).to(device)\n"),
    _pm("shift_or", CHECK + DEV + KEEP
        + "    bits = torch.cat([keep.to(torch.uint8), torch.zeros(-n % 8, dtype=torch.uint8, device=device)]).view(-1, 8)\n"
        "    out = torch.zeros(bits.shape[0], dtype=torch.uint8, device=device)\n"
        "    for j in range(8):  # eight vectorised steps, one per bit position\n"
        "        out |= bits[:, j] << j\n"
        "    return out\n"),
    _pm("bernoulli_int64", CHECK + DEV
        + "    n = math.prod(shape)\n"
        "    keep = torch.bernoulli(torch.full((n,), 1.0 - p, device=device), generator=generator).long()\n"
        "    keep = F.pad(keep, (0, (8 - n % 8) % 8))\n"
        "    return (keep.view(-1, 8) * (1 << torch.arange(8, device=device))).sum(1).to(torch.uint8)\n"),
    _pm("matmul_weights", CHECK + DEV + KEEP
        + "    padded = torch.zeros(math.ceil(n / 8) * 8, device=device)\n"
        "    padded[:n] = keep.float()\n"
        "    weights = torch.tensor([1.0, 2, 4, 8, 16, 32, 64, 128], device=device)\n"
        "    return (padded.view(-1, 8) @ weights).to(torch.uint8)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _pm("big_endian", CHECK + DEV + KEEP
        + "    return torch.from_numpy(np.packbits(keep.cpu().numpy())).to(device)  # NumPy's default bit order\n", PC),
    _pm("last_byte_lost", CHECK + DEV + KEEP
        + "    bits = keep[: n // 8 * 8].to(torch.uint8).view(-1, 8)\n"
        "    return (bits * (2 ** torch.arange(8, device=device)).to(torch.uint8)).sum(1, dtype=torch.uint8)\n", PC),
    _pm("ones_padding", CHECK + DEV + KEEP
        + "    keep = F.pad(keep.to(torch.uint8), (0, -n % 8), value=1)\n"
        "    return (keep.view(-1, 8) * (2 ** torch.arange(8, device=device)).to(torch.uint8)).sum(1, dtype=torch.uint8)\n", PC),
    _pm("random_padding", CHECK + DEV
        + "    n = math.prod(shape)\n"
        "    keep = torch.rand(math.ceil(n / 8) * 8, generator=generator, device=device) >= p  # bits past n are random\n"
        "    return (keep.to(torch.uint8).view(-1, 8) * (2 ** torch.arange(8, device=device)).to(torch.uint8)).sum(1, dtype=torch.uint8)\n",
        PC),
    _pm("swapped", CHECK + DEV
        + "    n = math.prod(shape)\n"
        "    keep = torch.rand(n, generator=generator, device=device) < p\n"
        "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little')).to(device)\n", PC),
    _pm("one_byte_per_entry", CHECK + DEV + KEEP + "    return keep.to(torch.uint8)\n", PC),
    _pm("int64_bytes", CHECK + DEV + KEEP
        + "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little').astype(np.int64)).to(device)\n", PC),
    _pm("no_valueerror", DEV + KEEP
        + "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little')).to(device)\n", PC),
    _pm("one_draw_per_byte", CHECK + DEV
        + "    n = math.prod(shape)\n"
        "    nbytes = math.ceil(n / 8)\n"
        "    byte_kept = torch.rand(nbytes, generator=generator, device=device) >= p\n"
        "    keep = byte_kept.repeat_interleave(8)[:n]  # every entry of a byte shares one draw\n"
        "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little')).to(device)\n", PR),
    _pm("same_every_call", CHECK + DEV
        + "    n = math.prod(shape)\n"
        "    keep = torch.rand(n, generator=torch.Generator(device=device).manual_seed(0), device=device) >= p\n"
        "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little')).to(device)\n", PR),
    _pm("ignores_generator", CHECK + DEV
        + "    n = math.prod(shape)\n"
        "    keep = torch.rand(n, device=device) >= p\n"
        "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little')).to(device)\n", PR),
    _pm("own_generator_when_none", CHECK + DEV
        + "    if generator is None:  # a generator of its own, seeded from the OS: ignores torch.manual_seed\n"
        "        generator = torch.Generator(device=device)\n        generator.seed()\n" + KEEP
        + "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little')).to(device)\n", PR),
    # drops with probability p / 2 for 0 < p < 1, otherwise correct: only the drop-rate properties may fail
    _pm("half_rate", CHECK + DEV
        + "    n = math.prod(shape)\n"
        "    keep = torch.rand(n, generator=generator, device=device) >= (p / 2 if p < 1 else p)\n"
        "    return torch.from_numpy(np.packbits(keep.cpu().numpy(), bitorder='little')).to(device)\n", PC),
]

UC, UM = {"unpack_mask.contract"}, {"unpack_mask.more"}
SIZE = "    n = math.prod(shape)\n    if packed.dim() != 1 or packed.numel() != (n + 7) // 8:\n        raise ValueError('size')\n"

UNPACKS = [
    # --- correct, written differently -------------------------------------------------------------
    _um("numpy_unpackbits", SIZE
        + "    bits = np.unpackbits(packed.cpu().numpy(), count=n, bitorder='little')\n"
        "    return torch.from_numpy(bits.astype(np.float32)).reshape(tuple(shape)).to(packed.device)\n"),
    _um("and_weights", SIZE
        + "    weights = (2 ** torch.arange(8, device=packed.device)).to(torch.uint8)\n"
        "    bits = (packed[:, None] & weights) != 0\n"
        "    return bits.flatten()[:n].float().view(*shape)\n"),
    _um("repeat_interleave", SIZE
        + "    shifts = torch.arange(8, device=packed.device).repeat(packed.numel())\n"
        "    bits = (packed.long().repeat_interleave(8) >> shifts) % 2\n"
        "    return bits[:n].reshape(tuple(shape)).to(torch.float32)\n"),
    _um("divmod", SIZE
        + "    k = torch.arange(n, device=packed.device)\n"
        "    return ((packed[k // 8].long() // 2 ** (k % 8)) % 2).float().reshape(tuple(shape))\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _um("big_endian", SIZE
        + "    bits = np.unpackbits(packed.cpu().numpy(), count=n)  # NumPy's default: bit 7 first\n"
        "    return torch.from_numpy(bits.astype(np.float32)).reshape(tuple(shape)).to(packed.device)\n", UC),
    _um("last_byte_lost", SIZE
        + "    full = np.unpackbits(packed.cpu().numpy()[: n // 8], bitorder='little').astype(np.float32)\n"
        "    out = np.zeros(n, dtype=np.float32)\n"
        "    out[: full.size] = full\n"
        "    return torch.from_numpy(out).reshape(tuple(shape)).to(packed.device)\n", UC),
    _um("flipped", SIZE
        + "    bits = np.unpackbits(packed.cpu().numpy(), count=n, bitorder='little')\n"
        "    return torch.from_numpy(1 - bits.astype(np.float32)).reshape(tuple(shape)).to(packed.device)\n", UC),
    _um("no_valueerror", "    n = math.prod(shape)\n"
        "    bits = np.unpackbits(packed.cpu().numpy(), bitorder='little')[:n]\n"
        "    bits = np.pad(bits, (0, n - bits.size))\n"
        "    return torch.from_numpy(bits.astype(np.float32)).reshape(tuple(shape)).to(packed.device)\n", UC),
    _um("float64", SIZE
        + "    bits = np.unpackbits(packed.cpu().numpy(), count=n, bitorder='little')\n"
        "    return torch.from_numpy(bits.astype(np.float64)).reshape(tuple(shape)).to(packed.device)\n", UC),
    _um("flat", SIZE
        + "    bits = np.unpackbits(packed.cpu().numpy(), count=n, bitorder='little')\n"
        "    return torch.from_numpy(bits.astype(np.float32)).to(packed.device)  # shape forgotten\n", UC),
    _um("rejects_dirty_padding", SIZE
        + "    bits = np.unpackbits(packed.cpu().numpy(), bitorder='little')\n"
        "    if bits[n:].any():\n"
        "        raise ValueError('unused bits must be zero')\n"
        "    return torch.from_numpy(bits[:n].astype(np.float32)).reshape(tuple(shape)).to(packed.device)\n", UC),
    _um("shifts_in_place", SIZE
        + "    cols = []\n"
        "    for _ in range(8):\n"
        "        cols.append(packed & 1)\n"
        "        packed >>= 1  # modifies the caller's tensor\n"
        "    bits = torch.stack(cols, dim=1).reshape(-1)[:n]\n"
        "    return bits.reshape(tuple(shape)).to(torch.float32)\n", UM),
    _um("numel_only", "    n = math.prod(shape)\n"
        "    if packed.numel() != (n + 7) // 8:  # a 2-D packed tensor slips through\n        raise ValueError('size')\n"
        "    bits = np.unpackbits(packed.cpu().numpy().reshape(-1), count=n, bitorder='little')\n"
        "    return torch.from_numpy(bits.astype(np.float32)).reshape(tuple(shape)).to(packed.device)\n", UC),
]


# lean_dropout: a Function class plus the wrapper. FN(...) fills the parts that differ.
SEED = ("    seed_device = generator.device if generator is not None else 'cpu'\n"
        "    seed = int(torch.randint(0, 2**62, (), generator=generator, device=seed_device))\n")
WRAP_HEAD = "def lean_dropout(x, p, training=True, generator=None):\n"
WRAP = (WRAP_HEAD + CHECK + "    if not training:\n        return x\n    if p == 1:\n        return x * 0.0\n" + SEED
        + "    return LeanDropout.apply(x, p, seed)\n")
MASK = "torch.rand(SHAPE, generator=torch.Generator(device=DEV).manual_seed(SEEDV), device=DEV) >= P"


def _mask(shape, dev, seed, p):
    return MASK.replace("SHAPE", shape).replace("DEV", dev).replace("SEEDV", seed).replace("P", p)


FWD_MASK = _mask("x.shape", "x.device", "seed", "p")
BWD_MASK = _mask("g.shape", "g.device", "ctx.seed", "ctx.p")


def _fn(forward_body, backward_body):
    return ("class LeanDropout(torch.autograd.Function):\n"
            "    @staticmethod\n"
            "    def forward(ctx, x, p, seed):\n" + forward_body +
            "    @staticmethod\n"
            "    def backward(ctx, g):\n" + backward_body + "\n\n")


STANDARD = _fn(f"        ctx.p, ctx.seed = p, seed\n        return x * ({FWD_MASK}) / (1 - p)\n",
               f"        return g * ({BWD_MASK}) / (1 - ctx.p), None, None\n")
LC, LM, LS = {"lean_dropout.contract"}, {"lean_dropout.memory"}, {"lean_dropout.safety"}

LEANS = [
    # --- correct, written differently -------------------------------------------------------------
    _ld("seed_on_ctx", STANDARD + WRAP),
    _ld("seed_tensor_saved", _fn(
        f"        ctx.p = p\n        ctx.save_for_backward(torch.tensor(seed))  # 8 bytes\n"
        f"        return x * ({FWD_MASK}) * (1 / (1 - p))\n",
        "        (s,) = ctx.saved_tensors\n"
        f"        return g * ({_mask('g.shape', 'g.device', 'int(s)', 'ctx.p')}) * (1 / (1 - ctx.p)), None, None\n") + WRAP),
    _ld("where_form", _fn(
        "        ctx.p, ctx.seed = p, seed\n"
        f"        return torch.where({FWD_MASK}, x / (1 - p), torch.zeros_like(x))\n",
        f"        return torch.where({BWD_MASK}, g / (1 - ctx.p), torch.zeros_like(g)), None, None\n") + WRAP),
    _ld("bernoulli_from_seed", _fn(
        "        ctx.p, ctx.seed = p, seed\n"
        "        gen = torch.Generator(device=x.device).manual_seed(seed)\n"
        "        return x * torch.bernoulli(torch.full_like(x, 1 - p), generator=gen) / (1 - p)\n",
        "        gen = torch.Generator(device=g.device).manual_seed(ctx.seed)\n"
        "        return g * torch.bernoulli(torch.full_like(g, 1 - ctx.p), generator=gen) / (1 - ctx.p), None, None\n")
        + WRAP_HEAD + CHECK + "    if not training:\n        return x\n    if p == 1:\n        return x.mul(0)\n"
        "    seed = int(torch.randint(2**31, (1,), generator=generator,\n"
        "                             device=generator.device if generator is not None else 'cpu'))\n"
        "    return LeanDropout.apply(x, p, seed)\n"),
    _ld("numpy_rng", _fn(
        "        ctx.p, ctx.seed = p, seed\n"
        "        keep = np.random.default_rng(seed).random(tuple(x.shape)) >= p\n"
        "        return x * torch.from_numpy(keep).to(x.device) / (1 - p)\n",
        "        keep = np.random.default_rng(ctx.seed).random(tuple(g.shape)) >= ctx.p\n"
        "        return g * torch.from_numpy(keep).to(g.device) / (1 - ctx.p), None, None\n") + WRAP),
    # --- buggy --------------------------------------------------------------------------------------
    _ld("different_seed_in_backward", _fn(
        f"        ctx.p, ctx.seed = p, seed\n        return x * ({FWD_MASK}) / (1 - p)\n",
        f"        return g * ({_mask('g.shape', 'g.device', 'ctx.seed + 1', 'ctx.p')}) / (1 - ctx.p), None, None\n") + WRAP,
        LC | LM),
    _ld("global_generator_in_backward", _fn(
        f"        ctx.p, ctx.seed = p, seed\n        return x * ({FWD_MASK}) / (1 - p)\n",
        "        return g * (torch.rand(g.shape, device=g.device) >= ctx.p) / (1 - ctx.p), None, None\n") + WRAP, LC | LM),
    _ld("saves_the_mask", _fn(
        f"        keep = {FWD_MASK}\n        ctx.save_for_backward(keep)\n        ctx.p = p\n        return x * keep / (1 - p)\n",
        "        (keep,) = ctx.saved_tensors\n        return g * keep / (1 - ctx.p), None, None\n") + WRAP, LM),
    _ld("mask_on_ctx", _fn(
        f"        ctx.keep = {FWD_MASK}\n        ctx.p = p\n        return x * ctx.keep / (1 - p)\n",
        "        return g * ctx.keep / (1 - ctx.p), None, None\n") + WRAP, LM),
    _ld("global_cache", "MASKS = {}\n\n\n" + _fn(
        f"        MASKS[seed] = {FWD_MASK}\n        ctx.p, ctx.seed = p, seed\n        return x * MASKS[seed] / (1 - p)\n",
        "        return g * MASKS.pop(ctx.seed) / (1 - ctx.p), None, None\n") + WRAP, LM),
    _ld("saves_packed_mask", _fn(
        f"        keep = {FWD_MASK}\n"
        "        ctx.save_for_backward(torch.from_numpy(np.packbits(keep.cpu().numpy().reshape(-1), bitorder='little')))\n"
        "        ctx.p, ctx.shape = p, x.shape\n        return x * keep / (1 - p)\n",
        "        (packed,) = ctx.saved_tensors\n"
        "        bits = np.unpackbits(packed.numpy(), count=math.prod(ctx.shape), bitorder='little')\n"
        "        keep = torch.from_numpy(bits.astype(bool)).reshape(ctx.shape).to(g.device)\n"
        "        return g * keep / (1 - ctx.p), None, None\n") + WRAP, LM),
    _ld("saves_generator_state", _fn(
        "        gen = torch.Generator(device=x.device).manual_seed(seed)\n"
        "        ctx.state, ctx.p = gen.get_state(), p  # 5,056 bytes on the CPU\n"
        "        return x * (torch.rand(x.shape, generator=gen, device=x.device) >= p) / (1 - p)\n",
        "        gen = torch.Generator(device=g.device)\n        gen.set_state(ctx.state)\n"
        "        return g * (torch.rand(g.shape, generator=gen, device=g.device) >= ctx.p) / (1 - ctx.p), None, None\n")
        + WRAP, LM),
    _ld("saves_the_input", _fn(
        f"        ctx.save_for_backward(x)\n        ctx.p, ctx.seed = p, seed\n        return x * ({FWD_MASK}) / (1 - p)\n",
        f"        (x,) = ctx.saved_tensors\n        return g * ({BWD_MASK}) / (1 - ctx.p), None, None\n") + WRAP, LM),
    _ld("seed_on_the_class", _fn(
        f"        LeanDropout.seed, ctx.p = seed, p  # shared by every call\n        return x * ({FWD_MASK}) / (1 - p)\n",
        f"        return g * ({_mask('g.shape', 'g.device', 'LeanDropout.seed', 'ctx.p')}) / (1 - ctx.p), None, None\n") + WRAP,
        LM),
    _ld("plain_autograd", "LeanDropout = None\n\n\n" + WRAP_HEAD + CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return x * 0.0\n" + SEED + f"    return x * ({FWD_MASK}).to(x.dtype) / (1 - p)\n", LM),
    _ld("manual_seed_global", _fn(
        "        ctx.p, ctx.seed = p, seed\n        torch.manual_seed(seed)\n"
        "        return x * (torch.rand(x.shape, device=x.device) >= p) / (1 - p)\n",
        "        torch.manual_seed(ctx.seed)\n"
        "        return g * (torch.rand(g.shape, device=g.device) >= ctx.p) / (1 - ctx.p), None, None\n") + WRAP, LS),
    _ld("nan_at_p1", STANDARD + WRAP.replace("    if p == 1:\n        return x * 0.0\n", ""), LC),
    _ld("zeros_without_gradient", STANDARD + WRAP.replace("return x * 0.0", "return torch.zeros_like(x)"), LC),
    _ld("drops_in_eval", STANDARD + WRAP.replace("    if not training:\n        return x\n", ""), LC),
    _ld("no_valueerror", STANDARD + WRAP.replace(CHECK, ""), LC),
    _ld("no_scaling", _fn(f"        ctx.p, ctx.seed = p, seed\n        return x * ({FWD_MASK})\n",
                          f"        return g * ({BWD_MASK}), None, None\n") + WRAP, LC),
    _ld("swapped", _fn(f"        ctx.p, ctx.seed = p, seed\n        return x * ~({FWD_MASK}) / (1 - p)\n",
                       f"        return g * ~({BWD_MASK}) / (1 - ctx.p), None, None\n") + WRAP, LC),
    _ld("in_place_without_grad", STANDARD + WRAP.replace(
        "    return LeanDropout.apply(x, p, seed)\n",
        "    if not x.requires_grad:  # reuse x's memory when no gradient is needed\n"
        f"        return x.mul_({FWD_MASK}).div_(1 - p)\n"
        "    return LeanDropout.apply(x, p, seed)\n"), LS),
    _ld("float32_output", STANDARD + WRAP.replace("return LeanDropout.apply(x, p, seed)",
                                                  "return LeanDropout.apply(x.float(), p, seed)"), LS),
    _ld("same_every_call", STANDARD + WRAP.replace(SEED, "    seed = 1234\n"), LS),
    _ld("ignores_generator", STANDARD + WRAP.replace(SEED, "    seed = int(torch.randint(0, 2**62, ()))\n"), LS),
    _ld("own_seed_when_none", STANDARD + WRAP.replace(SEED, SEED.replace(
        "    seed = int(", "    seed = int(np.random.SeedSequence().entropy % 2**62) if generator is None else int(")), LS),
    # drops with probability p / 2 (0 < p < 1) in both passes, otherwise correct: only the drop-rate properties may fail
    _ld("half_rate", _fn(
        f"        ctx.p, ctx.seed = p, seed\n        return x * ({_mask('x.shape', 'x.device', 'seed', 'p / 2')}) / (1 - p)\n",
        f"        return g * ({_mask('g.shape', 'g.device', 'ctx.seed', 'ctx.p / 2')}) / (1 - ctx.p), None, None\n") + WRAP, LC),
]

ALL = PACKED + UNPACKS + LEANS


def load(impl: Impl):
    """The function an implementation defines, compiled in a namespace like the notebook's (math, np, torch, F)."""
    import math

    import numpy as np
    import torch
    import torch.nn.functional as F

    ns = {"math": math, "np": np, "torch": torch, "F": F}
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
