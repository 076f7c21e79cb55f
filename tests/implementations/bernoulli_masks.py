"""Correct and buggy implementations of assignment 02's graded functions.

Each is source code (so the same text can be run against the checks directly or pasted into a
notebook's solution cell) defining the graded function by its contract name. A buggy one names the
checks that must catch it; a correct one must pass every check.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Impl:
    key: str
    target: str
    source: str
    fails: frozenset = field(default_factory=frozenset)  # empty: a correct implementation

    @property
    def correct(self) -> bool:
        return not self.fails


def _bm(key, body, fails=()):
    src = "def bernoulli_mask(shape, p, generator=None, device=None):\n" + body
    return Impl(key, "bernoulli_mask", src, frozenset(fails))


def _ds(key, body, fails=()):
    src = "def dropout_standard(x, p, training=True, generator=None):\n" + body
    return Impl(key, "dropout_standard", src, frozenset(fails))


CHECK = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"

MASKS = [
    # --- correct, written differently -------------------------------------------------------------
    _bm("rand_ge", CHECK + "    return (torch.rand(shape, generator=generator, device=device) >= p).float()\n"),
    _bm("bernoulli", CHECK + "    probs = torch.full(tuple(shape), 1.0 - p, device=device)\n"
        "    return torch.bernoulli(probs, generator=generator)\n"),
    _bm("numpy", CHECK + "    seed = int(torch.randint(0, 2**62, (1,), generator=generator))\n"
        "    u = np.random.default_rng(seed).random(tuple(shape))\n"
        "    return torch.from_numpy((u >= p).astype(np.float32)).to(device or 'cpu')\n"),
    _bm("where", CHECK + "    u = torch.rand(shape, generator=generator, device=device)\n"
        "    return torch.where(u < p, torch.zeros_like(u), torch.ones_like(u))\n"),
    _bm("bernoulli_inplace", CHECK + "    return torch.empty(tuple(shape), device=device).bernoulli_(1 - p, generator=generator)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _bm("swapped", CHECK + "    return (torch.rand(shape, generator=generator, device=device) < p).float()\n",
        {"bernoulli_mask.contract"}),
    _bm("no_valueerror", "    return (torch.rand(shape, generator=generator, device=device) >= p).float()\n",
        {"bernoulli_mask.contract"}),
    _bm("bool_dtype", CHECK + "    return torch.rand(shape, generator=generator, device=device) >= p\n",
        {"bernoulli_mask.contract"}),
    _bm("float64", CHECK + "    return (torch.rand(shape, generator=generator, device=device) >= p).double()\n",
        {"bernoulli_mask.contract"}),
    _bm("one_row_for_batch", CHECK + "    shape = tuple(shape)\n"
        "    row = torch.rand(shape[-1:], generator=generator, device=device) >= p\n"
        "    return row.expand(shape).float().contiguous()\n", {"bernoulli_mask.randomness"}),
    _bm("whole_rows", CHECK + "    shape = tuple(shape)\n"
        "    col = torch.rand(shape[:1] + (1,) * (len(shape) - 1), generator=generator, device=device) >= p\n"
        "    return col.expand(shape).float().contiguous()\n", {"bernoulli_mask.randomness"}),
    _bm("same_every_call", CHECK + "    torch.manual_seed(0)\n"
        "    return (torch.rand(shape, device=device) >= p).float()\n", {"bernoulli_mask.randomness"}),
    _bm("ignores_generator", CHECK + "    return (torch.rand(shape, device=device) >= p).float()\n",
        {"bernoulli_mask.randomness"}),
    _bm("rate_half", CHECK + "    return torch.randint(0, 2, tuple(shape), generator=generator, device=device).float()\n",
        {"bernoulli_mask.contract"}),
    _bm("scaled_mask", CHECK + "    m = (torch.rand(shape, generator=generator, device=device) >= p).float()\n"
        "    return m / (1 - p) if p < 1 else m\n", {"bernoulli_mask.contract"}),
    _bm("returns_numpy", CHECK + "    return (np.random.random(tuple(shape)) >= p).astype(np.float32)\n",
        {"bernoulli_mask.contract"}),
    _bm("numpy_global_rng", CHECK + "    if generator is None:\n"
        "        u = torch.from_numpy(np.random.random(tuple(shape))).float().to(device or 'cpu')\n"
        "    else:\n"
        "        u = torch.rand(shape, generator=generator, device=device)\n"
        "    return (u >= p).float()\n", {"bernoulli_mask.randomness"}),
    # Drops with probability p / 2 (for 0 < p < 1): only the rate is wrong (tests/test_observed_rates.py).
    _bm("half_rate", CHECK + "    return (torch.rand(shape, generator=generator, device=device) >= (p / 2 if p < 1 else p)).float()\n",
        {"bernoulli_mask.contract"}),
    _bm("python_loop", CHECK + "    import random\n"
        "    n = 1\n    for d in shape: n *= d\n"
        "    flat = [1.0 if random.random() >= p else 0.0 for _ in range(n)]\n"
        "    return torch.tensor(flat, dtype=torch.float32, device=device).reshape(tuple(shape))\n",
        {"bernoulli_mask.speed"}),
]

DROPOUTS = [
    # --- correct ------------------------------------------------------------------------------------
    _ds("rand_mul", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    m = torch.rand(x.shape, generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype)\n"),
    _ds("bernoulli", CHECK + "    if not training:\n        return (1.0 - p) * x\n"
        "    return x * torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)\n"),
    _ds("where", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    u = torch.rand(x.shape, generator=generator, device=x.device)\n"
        "    return torch.where(u < p, torch.zeros_like(x), x)\n"),
    _ds("numpy_mask", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    seed = int(torch.randint(0, 2**62, (1,), generator=generator))\n"
        "    keep = np.random.default_rng(seed).random(tuple(x.shape)) >= p\n"
        "    return x * torch.from_numpy(keep).to(device=x.device, dtype=x.dtype)\n"),
    _ds("masked_fill", CHECK + "    if not training:\n        return x.mul(1 - p)\n"
        "    drop = torch.rand(x.shape, generator=generator, device=x.device) < p\n"
        "    return x.masked_fill(drop, 0.0)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _ds("no_eval_scaling", CHECK + "    if not training:\n        return x\n"
        "    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype)\n",
        {"dropout_standard.contract"}),
    _ds("inverted", CHECK + "    if not training or p == 0:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype) / (1 - p)\n",
        {"dropout_standard.contract"}),
    _ds("swapped", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    return x * (torch.rand(x.shape, generator=generator, device=x.device) < p).to(x.dtype)\n",
        {"dropout_standard.contract"}),
    _ds("one_mask_for_batch", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    m = torch.rand(x.shape[1:], generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype)\n", {"dropout_standard.safety"}),
    _ds("same_every_call", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    torch.manual_seed(1234)\n"
        "    return x * (torch.rand(x.shape, device=x.device) >= p).to(x.dtype)\n", {"dropout_standard.safety"}),
    _ds("drops_in_eval", CHECK + "    m = (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype)\n"
        "    return x * m if training else x * m * (1 - p)\n", {"dropout_standard.contract"}),
    _ds("float32_output", CHECK + "    if not training:\n        return (x * (1 - p)).float()\n"
        "    return (x * (torch.rand(x.shape, generator=generator, device=x.device) >= p)).float()\n",
        {"dropout_standard.safety"}),
    _ds("in_place", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    with torch.no_grad():\n"
        "        x.mul_((torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype))\n"
        "    return x\n", {"dropout_standard.safety"}),
    _ds("nan_at_p1", CHECK + "    q = 1 - p\n    m = (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype)\n"
        "    return (x * m / q) * q if training else x * q\n", {"dropout_standard.contract"}),
    _ds("no_valueerror", "    if not training:\n        return x * (1 - p)\n"
        "    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype)\n",
        {"dropout_standard.contract"}),
    _ds("numpy_detached", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    keep = np.random.random(tuple(x.shape)) >= p\n"
        "    return torch.from_numpy(x.detach().cpu().numpy() * keep).to(x.device)\n",
        {"dropout_standard.safety"}),
    _ds("eval_scaled_by_p", CHECK + "    if not training:\n        return x * p\n"
        "    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype)\n",
        {"dropout_standard.contract"}),
    _ds("ignores_generator", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    return x * (torch.rand(x.shape, device=x.device) >= p).to(x.dtype)\n", {"dropout_standard.safety"}),
    _ds("whole_rows", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    m = torch.rand(x.shape[0], 1, generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype)\n", {"dropout_standard.safety"}),
    _ds("valueerror_only_in_training", "    if not training:\n        return x * (1 - p)\n" + CHECK
        + "    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype)\n",
        {"dropout_standard.contract"}),
    _ds("half_rate", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= (p / 2 if p < 1 else p)).to(x.dtype)\n",
        {"dropout_standard.contract"}),
    _ds("python_loop", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    import random\n    flat = x.reshape(-1)\n"
        "    keep = torch.tensor([random.random() >= p for _ in range(flat.numel())], device=x.device)\n"
        "    return (flat * keep.to(x.dtype)).reshape(x.shape)\n", {"dropout_standard.speed"}),
]

ALL = MASKS + DROPOUTS


def load(impl: Impl):
    """The function an implementation defines, compiled in a namespace with torch and numpy."""
    import numpy as np
    import torch

    ns = {"torch": torch, "np": np}
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
