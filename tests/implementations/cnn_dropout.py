"""Correct and buggy implementations of assignment 05's graded functions, ``dropout2d`` and ``dropblock2d``.

Each is source code defining the graded function by its contract name (so the same text can run against
the checks directly or be pasted into a notebook's solution cell). A buggy one names the checks that must
catch it; a correct one must pass every check. The sources run in a namespace with torch, F
(torch.nn.functional) and np.
"""

from tests.implementations.bernoulli_masks import Impl

D2_HEAD = "def dropout2d(x, p, training=True, generator=None):\n"
DB_HEAD = "def dropblock2d(x, p, block_size, training=True, generator=None):\n"

D2_CHECK = (
    "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
    "    if x.dim() != 4:\n        raise ValueError('x must be (N, C, H, W)')\n"
)
D2_EVAL = "    if not training:\n        return x\n"
SCALE = "    scale = 0.0 if p == 1 else 1.0 / (1 - p)\n"


def _d2(key, body, fails=(), check=True):
    return Impl(key, "dropout2d", D2_HEAD + (D2_CHECK if check else "") + body, frozenset(fails))


def _d2_mask(key, mask_expr, fails, tail="    return x * keep * scale\n"):
    """A training path that draws ``u`` with ``mask_expr`` (a shape) and keeps where u >= p."""
    body = D2_EVAL + SCALE + (
        "    N, C, H, W = x.shape\n"
        f"    u = torch.rand({mask_expr}, generator=generator, device=x.device)\n"
        "    keep = (u >= p).to(x.dtype)\n"
    ) + tail
    return _d2(key, body, fails)


DROPOUT2D = [
    # --- correct, written differently -------------------------------------------------------------
    _d2_mask("rand_nc11", "(N, C, 1, 1)", ()),
    _d2("bernoulli", D2_EVAL + (
        "    N, C = x.shape[:2]\n"
        "    keep = torch.bernoulli(torch.full((N, C, 1, 1), 1 - p, dtype=x.dtype, device=x.device), generator=generator)\n"
        "    return x * keep / (1 - p) if p < 1 else x * keep\n")),
    # F.dropout2d takes no generator: this wrapper seeds a forked global RNG from it, and checks x.dim() itself
    # (F.dropout2d only warns on 3-D input).
    _d2("functional_wrapper", (
        "    if generator is None:\n"
        "        return F.dropout2d(x, p, training=training)\n"
        "    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))\n"
        "    devices = [x.device] if x.device.type == 'cuda' else []\n"
        "    with torch.random.fork_rng(devices=devices):\n"
        "        torch.manual_seed(seed)\n"
        "        return F.dropout2d(x, p, training=training)\n")),
    _d2("numpy_mask", D2_EVAL + SCALE + (
        "    dev = generator.device if generator is not None else 'cpu'\n"
        "    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=dev))\n"
        "    keep = np.random.default_rng(seed).random(tuple(x.shape[:2]) + (1, 1)) >= p\n"
        "    return x * torch.from_numpy(keep).to(device=x.device, dtype=x.dtype) * scale\n")),
    _d2("where", D2_EVAL + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    return torch.where(u >= p, x / (1 - p) if p < 1 else x, torch.zeros_like(x))\n")),
    # --- buggy --------------------------------------------------------------------------------------
    _d2_mask("element_wise", "x.shape", {"dropout2d.contract"}),
    _d2_mask("per_sample", "(N, 1, 1, 1)", {"dropout2d.sharing"}),
    _d2_mask("shared_over_channels", "(N, 1, H, W)", {"dropout2d.contract", "dropout2d.sharing"}),
    _d2_mask("per_channel_only", "(1, C, 1, 1)", {"dropout2d.sharing"}),
    _d2_mask("channels_last", "(N, 1, 1, W)", {"dropout2d.contract", "dropout2d.sharing"}),
    _d2_mask("no_scaling", "(N, C, 1, 1)", {"dropout2d.contract"}, tail="    return x * keep\n"),
    _d2("swapped", D2_EVAL + SCALE + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    return x * (u < p).to(x.dtype) * scale\n"), {"dropout2d.contract"}),
    _d2("drops_in_eval", SCALE + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    keep = (u >= p).to(x.dtype)\n"
        "    return x * keep * scale if training else x * keep\n"), {"dropout2d.contract"}),
    _d2("eval_scaled_by_q", SCALE + (
        "    if not training:\n        return x * (1 - p)\n"
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    return x * (u >= p).to(x.dtype) * scale\n"), {"dropout2d.contract"}),
    _d2("nan_at_p1", D2_EVAL + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    return x * (u >= p).to(x.dtype) / (1 - p)\n"), {"dropout2d.contract"}),
    _d2("accepts_3d", D2_EVAL + SCALE + (
        "    u = torch.rand(x.shape[0], x.shape[1], *([1] * (x.dim() - 2)), generator=generator, device=x.device)\n"
        "    return x * (u >= p).to(x.dtype) * scale\n"), {"dropout2d.contract"}, check=False),
    _d2("valueerror_only_in_training", SCALE + (
        "    if not training:\n        return x\n" + D2_CHECK +
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    return x * (u >= p).to(x.dtype) * scale\n"), {"dropout2d.contract"}, check=False),
    _d2("float32_factor", D2_EVAL + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    return x * ((u >= p).float() / (1 - p)) if p < 1 else x * 0\n"), {"dropout2d.safety"}),
    _d2("half_rate", D2_EVAL + SCALE + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    return x * (u >= (p / 2 if p < 1 else p)).to(x.dtype) * scale\n"), {"dropout2d.contract"}),
    _d2("plain_functional", "    return F.dropout2d(x, p, training=training)\n",
        {"dropout2d.contract", "dropout2d.safety"}, check=False),
    _d2("same_every_call", D2_EVAL + SCALE + (
        "    torch.manual_seed(0)\n"
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, device=x.device)\n"
        "    return x * (u >= p).to(x.dtype) * scale\n"), {"dropout2d.safety"}),
    _d2("ignores_generator", D2_EVAL + SCALE + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, device=x.device)\n"
        "    return x * (u >= p).to(x.dtype) * scale\n"), {"dropout2d.safety"}),
    _d2("in_place", D2_EVAL + SCALE + (
        "    u = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator, device=x.device)\n"
        "    with torch.no_grad():\n"
        "        x.mul_((u >= p).to(x.dtype) * scale)\n"
        "    return x\n"), {"dropout2d.safety"}),
    _d2("numpy_detached", D2_EVAL + SCALE + (
        "    keep = np.random.random(tuple(x.shape[:2]) + (1, 1)) >= p\n"
        "    return torch.from_numpy(x.detach().cpu().numpy() * keep * scale).to(x.device)\n"), {"dropout2d.safety"}),
]


# ---------------------------------------------------------------------------------------------
# dropblock2d
# ---------------------------------------------------------------------------------------------
DB_CHECK = (
    "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
    "    if x.dim() != 4:\n        raise ValueError('x must be (N, C, H, W)')\n"
    "    N, C, H, W = x.shape\n"
    "    if int(block_size) != block_size:\n        raise ValueError(f'block_size={block_size} is not an integer')\n"
    "    b = int(block_size)\n"
    "    if b < 1 or b > min(H, W):\n        raise ValueError(f'block_size={block_size}')\n"
)
DB_TRIVIAL = "    if not training or p == 0:\n        return x\n    if p == 1:\n        return x * 0\n"
GAMMA = "    gamma = p * H * W / (b * b * (H - b + 1) * (W - b + 1))\n"
SEEDS = "    seeds = (torch.rand((N, C, H - b + 1, W - b + 1), generator=generator, device=x.device) < gamma).to(x.dtype)\n"
MAXPOOL = "    dropped = F.max_pool2d(F.pad(seeds, (b - 1, b - 1, b - 1, b - 1)), b, stride=1)\n"
RENORM = (
    "    keep = 1 - dropped\n"
    "    kept = keep.sum()\n"
    "    if kept == 0:\n        return x * 0\n"
    "    return x * keep * (keep.numel() / kept)\n"
)


def _db(key, body, fails=(), check=True):
    return Impl(key, "dropblock2d", DB_HEAD + (DB_CHECK if check else "") + body, frozenset(fails))


def _db_std(key, fails, trivial=DB_TRIVIAL, gamma=GAMMA, seeds=SEEDS, grow=MAXPOOL, renorm=RENORM, check=True):
    """The max-pool implementation with one piece swapped out."""
    return _db(key, trivial + gamma + seeds + grow + renorm, fails, check)


DROPBLOCK2D = [
    # --- correct, written differently -------------------------------------------------------------
    _db_std("max_pool", ()),
    _db("conv_transpose", DB_TRIVIAL + GAMMA + SEEDS + (
        "    ones = torch.ones(1, 1, b, b, dtype=x.dtype, device=x.device)\n"
        "    covered = F.conv_transpose2d(seeds.reshape(N * C, 1, H - b + 1, W - b + 1), ones).reshape(N, C, H, W)\n"
        "    keep = (covered == 0).to(x.dtype)\n"
        "    n_kept = int(keep.sum())\n"
        "    return x * keep * (x.numel() / n_kept) if n_kept else x * 0\n")),
    _db("offset_loop", DB_TRIVIAL + GAMMA + SEEDS + (
        "    dropped = torch.zeros_like(x, dtype=torch.bool)\n"
        "    for di in range(b):\n"
        "        for dj in range(b):\n"
        "            dropped[:, :, di:di + H - b + 1, dj:dj + W - b + 1] |= seeds.bool()\n"
        "    keep = (~dropped).to(x.dtype)\n"
        "    return torch.where(dropped, torch.zeros_like(x), x * (x.numel() / keep.sum().clamp(min=1)))\n")),
    _db("fold", DB_TRIVIAL + GAMMA + SEEDS + (
        "    cols = seeds.reshape(N * C, 1, -1).expand(N * C, b * b, (H - b + 1) * (W - b + 1))\n"
        "    covered = F.fold(cols, (H, W), b).reshape(N, C, H, W)\n"
        "    keep = (covered == 0).to(x.dtype)\n"
        "    kept = keep.sum()\n"
        "    return x * keep * (keep.numel() / kept) if kept > 0 else torch.zeros_like(x) * x\n")),
    _db("numpy", DB_TRIVIAL + GAMMA + (
        "    dev = generator.device if generator is not None else 'cpu'\n"
        "    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator, device=dev)))\n"
        "    seeds = rng.random((N, C, H - b + 1, W - b + 1)) < gamma\n"
        "    dropped = np.zeros((N, C, H, W), dtype=bool)\n"
        "    for di in range(b):\n"
        "        for dj in range(b):\n"
        "            dropped[:, :, di:di + H - b + 1, dj:dj + W - b + 1] |= seeds\n"
        "    keep = torch.from_numpy(~dropped).to(device=x.device, dtype=x.dtype)\n"
        "    kept = int((~dropped).sum())\n"
        "    return x * keep * (x.numel() / kept) if kept else x * 0\n")),
    # --- buggy --------------------------------------------------------------------------------------
    _db_std("no_renormalisation", {"dropblock2d.contract"}, renorm="    return x * (1 - dropped)\n"),
    _db_std("renormalise_by_q", {"dropblock2d.contract"}, renorm="    return x * (1 - dropped) / (1 - p)\n"),
    _db_std("per_sample_scale", {"dropblock2d.contract"}, renorm=(
        "    keep = 1 - dropped\n"
        "    kept = keep.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1)\n"
        "    return x * keep * (keep[0].numel() / kept)\n")),
    _db_std("gamma_equals_p", {"dropblock2d.blocks"}, gamma="    gamma = p\n"),
    _db_std("gamma_without_valid_region", {"dropblock2d.blocks"}, gamma="    gamma = p / (b * b)\n"),
    _db_std("single_units", {"dropblock2d.blocks"}, gamma="    gamma = p\n",
            seeds="    dropped = (torch.rand(x.shape, generator=generator, device=x.device) < gamma).to(x.dtype)\n", grow=""),
    _db_std("blocks_too_big", {"dropblock2d.blocks"}, seeds=SEEDS.replace("H - b + 1", "H - b").replace("W - b + 1", "W - b"),
            grow="    dropped = F.max_pool2d(F.pad(seeds, (b, b, b, b)), b + 1, stride=1)\n"),
    _db_std("blocks_too_small", {"dropblock2d.blocks"}, seeds=SEEDS.replace("H - b + 1", "H - b + 2").replace("W - b + 1", "W - b + 2"),
            grow="    dropped = F.max_pool2d(F.pad(seeds, (b - 2, b - 2, b - 2, b - 2)), b - 1, stride=1)\n"),
    _db_std("clipped_at_border", {"dropblock2d.blocks"}, gamma="    gamma = p / (b * b)\n",
            seeds="    seeds = (torch.rand(x.shape, generator=generator, device=x.device) < gamma).to(x.dtype)\n",
            grow="    dropped = F.max_pool2d(seeds, b, stride=1, padding=b // 2)\n"),
    _db_std("square_maps_assumed", {"dropblock2d.blocks"}, seeds=SEEDS.replace("W - b + 1", "H - b + 1")),
    _db_std("shared_across_channels", {"dropblock2d.safety"}, seeds=SEEDS.replace("(N, C,", "(N, 1,")),
    _db_std("shared_across_batch", {"dropblock2d.safety"}, seeds=SEEDS.replace("(N, C,", "(1, C,")),
    _db_std("drops_in_eval", {"dropblock2d.contract"}, trivial="    if p == 0:\n        return x\n    if p == 1:\n        return x * 0\n"),
    _db_std("no_p1_case", {"dropblock2d.contract"}, trivial="    if not training or p == 0:\n        return x\n"),
    _db_std("accepts_3d", {"dropblock2d.contract"}, check=False, trivial=(
        "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
        "    if x.dim() == 3:\n        x = x[None]\n"
        "    N, C, H, W = x.shape\n    b = int(block_size)\n"
        "    if b < 1 or b > min(H, W):\n        raise ValueError(f'block_size={block_size}')\n" + DB_TRIVIAL)),
    _db_std("no_block_size_check", {"dropblock2d.contract"}, check=False, trivial=(
        "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
        "    if x.dim() != 4:\n        raise ValueError('x must be (N, C, H, W)')\n"
        "    N, C, H, W = x.shape\n    b = max(1, min(int(block_size), H, W))\n" + DB_TRIVIAL)),
    # Corners drawn in range(H - b) instead of range(H - b + 1): the last row and column are never dropped.
    _db_std("corners_one_short", {"dropblock2d.blocks"},
            seeds=SEEDS + "    seeds[..., -1, :] = 0\n    seeds[..., :, -1] = 0\n"),
    _db_std("half_gamma", {"dropblock2d.blocks"}, gamma=GAMMA + "    gamma = gamma / 2\n"),
    _db_std("fractional_block_size", {"dropblock2d.contract"}, check=False, trivial=(
        "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
        "    if x.dim() != 4:\n        raise ValueError('x must be (N, C, H, W)')\n"
        "    N, C, H, W = x.shape\n    b = int(block_size)\n"
        "    if b < 1 or b > min(H, W):\n        raise ValueError(f'block_size={block_size}')\n" + DB_TRIVIAL)),
    _db_std("valueerror_only_in_training", {"dropblock2d.contract"}, check=False,
            trivial="    if not training:\n        return x\n" + DB_CHECK + DB_TRIVIAL),
    _db_std("nan_when_nothing_kept", {"dropblock2d.contract"}, renorm=(
        "    keep = 1 - dropped\n"
        "    return x * keep * (keep.numel() / keep.sum())\n")),
    _db_std("same_every_call", {"dropblock2d.safety"}, seeds="    torch.manual_seed(0)\n" + SEEDS.replace("generator=generator, ", "")),
    _db_std("ignores_generator", {"dropblock2d.safety"}, seeds=SEEDS.replace("generator=generator, ", "")),
    _db_std("in_place", {"dropblock2d.safety"}, renorm=(
        "    keep = 1 - dropped\n"
        "    with torch.no_grad():\n"
        "        x.mul_(keep * (keep.numel() / keep.sum()))\n"
        "    return x\n")),
]

ALL = DROPOUT2D + DROPBLOCK2D


def load(impl: Impl):
    """The function an implementation defines, compiled in a namespace with torch, F and numpy."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    ns = {"torch": torch, "F": F, "np": np}
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
