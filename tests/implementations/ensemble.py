"""Correct and buggy implementations of assignment 03_ensemble's graded functions.

Each is source code defining the graded function by its contract name (so the same text runs against
the checks directly or goes into a notebook's solution cell). Sources may use ``torch``, ``np``,
``math`` and ``itertools``; the graded functions may call ``all_masks``, which ``load`` provides from
the reference implementation unless the source defines its own. A buggy implementation names the
checks that must catch it; a correct one must pass every check of its target.
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


def _am(key, body, fails=()):
    return Impl(key, "all_masks", "def all_masks(n):\n" + body, frozenset(fails))


def _ex(key, body, fails=()):
    return Impl(key, "exact_ensemble_mean", "def exact_ensemble_mean(f, x, p, n):\n" + body, frozenset(fails))


def _geo(key, body, fails=()):
    return Impl(key, "geometric_ensemble_mean", "def geometric_ensemble_mean(f, x, p, n):\n" + body, frozenset(fails))


def _mc(key, body, fails=()):
    return Impl(key, "mc_ensemble_mean", "def mc_ensemble_mean(f, x, p, n, k, generator=None):\n" + body, frozenset(fails))


CHECK_N = "    if n < 0:\n        raise ValueError(f'n={n}')\n"
CHECK_P = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
CHECK_K = CHECK_P + "    if k < 1:\n        raise ValueError(f'k={k}')\n"

# The reference all_masks that the other functions' implementations may call.
REFERENCE_ALL_MASKS = (
    "def all_masks(n):\n" + CHECK_N +
    "    bits = torch.arange(n)\n"
    "    return ((torch.arange(2 ** n)[:, None] >> bits) & 1).float()\n"
)

ALL_MASKS = [
    # --- correct, written differently -------------------------------------------------------------
    _am("bits", CHECK_N + "    bits = torch.arange(n)\n    return ((torch.arange(2 ** n)[:, None] >> bits) & 1).float()\n"),
    _am("itertools", CHECK_N + "    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float32).reshape(2 ** n, n)\n"),
    _am("recursive", CHECK_N + "    if n == 0:\n        return torch.zeros(1, 0)\n"
        "    rest = all_masks(n - 1)\n"
        "    zeros, ones = torch.zeros(len(rest), 1), torch.ones(len(rest), 1)\n"
        "    return torch.cat([torch.cat([zeros, rest], 1), torch.cat([ones, rest], 1)], 0)\n"),
    _am("cartesian", CHECK_N + "    if n == 0:\n        return torch.zeros(1, 0)\n"
        "    if n == 1:\n        return torch.tensor([[0.0], [1.0]])\n"
        "    return torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * n)\n"),
    _am("reversed_numpy", CHECK_N + "    rows = [[(i >> (n - 1 - j)) & 1 for j in range(n)] for i in range(2 ** n)]\n"
        "    return torch.flip(torch.from_numpy(np.array(rows, dtype=np.float32).reshape(2 ** n, n)), dims=[0])\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _am("missing_last", CHECK_N + "    bits = torch.arange(n)\n    return ((torch.arange(2 ** n - 1)[:, None] >> bits) & 1).float()\n",
        {"all_masks.contract"}),
    _am("duplicates", CHECK_N + "    bits = torch.arange(n)\n    i = torch.arange(2 ** n) // 2 * 2\n"
        "    return ((i[:, None] >> bits) & 1).float()\n", {"all_masks.contract"}),
    _am("int_dtype", CHECK_N + "    bits = torch.arange(n)\n    return (torch.arange(2 ** n)[:, None] >> bits) & 1\n",
        {"all_masks.contract"}),
    _am("bool_dtype", CHECK_N + "    bits = torch.arange(n)\n    return ((torch.arange(2 ** n)[:, None] >> bits) & 1).bool()\n",
        {"all_masks.contract"}),
    _am("transposed", CHECK_N + "    bits = torch.arange(n)\n    return ((torch.arange(2 ** n)[:, None] >> bits) & 1).float().T\n",
        {"all_masks.contract"}),
    _am("uint8_bits", CHECK_N + "    i = torch.arange(2 ** n).to(torch.uint8)\n"
        "    return ((i[:, None] >> torch.arange(n).to(torch.uint8)) & 1).float()\n", {"all_masks.contract"}),
    _am("no_valueerror", "    bits = torch.arange(max(n, 0))\n    return ((torch.arange(2 ** max(n, 0))[:, None] >> bits) & 1).float()\n",
        {"all_masks.contract"}),
    _am("empty_at_0", CHECK_N + "    if n == 0:\n        return torch.zeros(0, 0)\n"
        "    bits = torch.arange(n)\n    return ((torch.arange(2 ** n)[:, None] >> bits) & 1).float()\n", {"all_masks.contract"}),
    _am("plus_minus", CHECK_N + "    bits = torch.arange(n)\n    return 2 * ((torch.arange(2 ** n)[:, None] >> bits) & 1).float() - 1\n",
        {"all_masks.contract"}),
    _am("random_rows", CHECK_N + "    return (torch.rand(2 ** n, n) < 0.5).float()\n", {"all_masks.contract"}),
    _am("numpy_out", CHECK_N + "    return ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float32)\n",
        {"all_masks.contract"}),
]

EXACT = [
    # --- correct ------------------------------------------------------------------------------------
    _ex("loop", CHECK_P + "    q = 1 - p\n    total = 0\n"
        "    for m in all_masks(n):\n"
        "        k = int(m.sum())\n"
        "        total = total + q ** k * p ** (n - k) * f(x, m.to(x.device))\n"
        "    return total\n"),
    _ex("stack", CHECK_P + "    masks = all_masks(n).to(x.device)\n    k = masks.sum(1)\n"
        "    w = (1 - p) ** k * p ** (n - k)\n"
        "    outs = torch.stack([f(x, m) for m in masks])\n"
        "    return torch.tensordot(w.to(outs.dtype), outs, dims=1)\n"),
    _ex("skip_zero_weight", CHECK_P + "    total = None\n"
        "    for m in all_masks(n).to(x.device):\n"
        "        k = int(m.sum())\n        w = (1 - p) ** k * p ** (n - k)\n"
        "        if w == 0:\n            continue\n"
        "        term = w * f(x, m)\n        total = term if total is None else total + term\n"
        "    return total\n"),
    _ex("itertools_float64", CHECK_P + "    total = 0\n"
        "    for bits in itertools.product([0, 1], repeat=n):\n"
        "        m = torch.tensor(bits, dtype=torch.float64, device=x.device)\n"
        "        k = sum(bits)\n"
        "        total = total + (1 - p) ** k * p ** (n - k) * f(x, m).double()\n"
        "    return total\n"),
    _ex("prob_product", CHECK_P + "    total = 0\n"
        "    for m in all_masks(n).to(x.device):\n"
        "        w = torch.prod(m * (1 - p) + (1 - m) * p)\n"
        "        total = total + w * f(x, m)\n"
        "    return total\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _ex("each_mask_twice", CHECK_P + "    q = 1 - p\n    total = 0\n"
        "    for m in all_masks(n):\n"
        "        k = int(m.sum())\n"
        "        f(x, m.to(x.device))  # a wasted call: the value is not used\n"
        "        total = total + q ** k * p ** (n - k) * f(x, m.to(x.device))\n"
        "    return total\n", {"exact_ensemble_mean.contract"}),
    _ex("swapped", CHECK_P + "    total = 0\n    for m in all_masks(n):\n        k = int(m.sum())\n"
        "        total = total + p ** k * (1 - p) ** (n - k) * f(x, m)\n    return total\n",
        {"exact_ensemble_mean.contract"}),
    _ex("uniform", CHECK_P + "    masks = all_masks(n)\n    return sum(f(x, m) for m in masks) / len(masks)\n",
        {"exact_ensemble_mean.contract"}),
    _ex("missing_full", CHECK_P + "    total = 0\n    for m in all_masks(n)[:-1]:\n        k = int(m.sum())\n"
        "        total = total + (1 - p) ** k * p ** (n - k) * f(x, m)\n    return total\n",
        {"exact_ensemble_mean.contract"}),
    _ex("log_weights", CHECK_P + "    total = 0\n    for m in all_masks(n):\n        k = m.sum()\n"
        "        w = torch.exp(k * torch.log(torch.tensor(1 - p)) + (n - k) * torch.log(torch.tensor(p)))\n"
        "        total = total + w * f(x, m)\n    return total\n", {"exact_ensemble_mean.contract"}),
    _ex("no_valueerror", "    total = 0\n    for m in all_masks(n):\n        k = int(m.sum())\n"
        "        total = total + (1 - p) ** k * p ** (n - k) * f(x, m)\n    return total\n",
        {"exact_ensemble_mean.contract"}),
    _ex("geometric", CHECK_P + "    total = 0\n    for m in all_masks(n):\n        k = int(m.sum())\n"
        "        w = (1 - p) ** k * p ** (n - k)\n        if w > 0:\n            total = total + w * torch.log(f(x, m))\n"
        "    g = torch.exp(total)\n    return g / g.sum(-1, keepdim=True)\n", {"exact_ensemble_mean.contract"}),
    _ex("batched_masks", CHECK_P + "    masks = all_masks(n)\n    k = masks.sum(1)\n    w = (1 - p) ** k * p ** (n - k)\n"
        "    return torch.tensordot(w, f(x, masks), dims=1)\n", {"exact_ensemble_mean.contract"}),
    _ex("bool_masks", CHECK_P + "    total = 0\n    for m in all_masks(n).bool():\n        k = int(m.sum())\n"
        "        total = total + (1 - p) ** k * p ** (n - k) * f(x, m)\n    return total\n",
        {"exact_ensemble_mean.contract"}),
    _ex("weight_scaling", CHECK_P + "    return f(x, torch.full((n,), 1 - p))\n", {"exact_ensemble_mean.contract"}),
    _ex("binomial_weights", CHECK_P + "    total = 0\n    for m in all_masks(n):\n        k = int(m.sum())\n"
        "        total = total + math.comb(n, k) * (1 - p) ** k * p ** (n - k) * f(x, m)\n    return total\n",
        {"exact_ensemble_mean.contract"}),
    _ex("first_512_masks", CHECK_P + "    total = 0\n    for m in all_masks(n)[:512]:\n        k = int(m.sum())\n"
        "        total = total + (1 - p) ** k * p ** (n - k) * f(x, m)\n    return total\n",
        {"exact_ensemble_mean.edge"}),
    _ex("batch_only", CHECK_P + "    total = 0\n    for m in all_masks(n):\n        k = int(m.sum())\n"
        "        total = total + (1 - p) ** k * p ** (n - k) * f(x, m)\n    return total.reshape(x.shape[0], -1)\n",
        {"exact_ensemble_mean.edge"}),
]

GEO_BODY = (
    "    log_total = 0\n"
    "    for m in all_masks(n).to(x.device):\n"
    "        k = int(m.sum())\n"
    "        w = (1 - p) ** k * p ** (n - k)\n"
)

GEOMETRIC = [
    # --- correct ------------------------------------------------------------------------------------
    _geo("skip_zero", CHECK_P + GEO_BODY + "        if w > 0:\n            log_total = log_total + w * torch.log(f(x, m))\n"
         "    return torch.softmax(log_total, dim=-1)\n"),
    _geo("xlogy", CHECK_P + "    masks = all_masks(n).to(x.device)\n    k = masks.sum(1)\n"
         "    w = (1 - p) ** k * p ** (n - k)\n"
         "    s = sum(torch.xlogy(wi, f(x, m)) for wi, m in zip(w, masks))\n"
         "    return torch.softmax(s, dim=-1)\n"),
    _geo("where_logsumexp", CHECK_P + "    masks = all_masks(n).to(x.device)\n    k = masks.sum(1)\n"
         "    w = (1 - p) ** k * p ** (n - k)\n"
         "    logs = torch.stack([torch.log(f(x, m)) for m in masks])\n"
         "    w = w.reshape((-1,) + (1,) * (logs.dim() - 1)).to(logs.dtype)\n"
         "    s = torch.where(w > 0, w * logs, torch.zeros_like(logs)).sum(0)\n"
         "    return torch.exp(s - torch.logsumexp(s, dim=-1, keepdim=True))\n"),
    _geo("float64_max_shift", CHECK_P + GEO_BODY + "        if w == 0:\n            continue\n"
         "        log_total = log_total + w * f(x, m).double().log()\n"
         "    s = log_total - log_total.max(dim=-1, keepdim=True).values\n"
         "    g = s.exp()\n    return g / g.sum(dim=-1, keepdim=True)\n"),
    _geo("power_product", CHECK_P + "    g = 1\n"
         "    for m in all_masks(n).to(x.device):\n        k = int(m.sum())\n"
         "        g = g * f(x, m) ** ((1 - p) ** k * p ** (n - k))\n"
         "    return g / g.sum(-1, keepdim=True)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    # A made-up distribution where the mean is undefined (0 / 0): uniform instead of NaN.
    _geo("uniform_when_undefined", CHECK_P + GEO_BODY + "        if w > 0:\n            log_total = log_total + w * torch.log(f(x, m))\n"
         "    g = torch.softmax(log_total, dim=-1)\n"
         "    return torch.nan_to_num(g, nan=1.0 / g.shape[-1])\n", {"geometric_ensemble_mean.safety"}),
    _geo("arithmetic", CHECK_P + "    total = 0\n    for m in all_masks(n):\n        k = int(m.sum())\n"
         "        total = total + (1 - p) ** k * p ** (n - k) * f(x, m)\n    return total\n",
         {"geometric_ensemble_mean.contract"}),
    _geo("unnormalised", CHECK_P + GEO_BODY + "        if w > 0:\n            log_total = log_total + w * torch.log(f(x, m))\n"
         "    return torch.exp(log_total)\n", {"geometric_ensemble_mean.contract"}),
    _geo("wrong_dim", CHECK_P + GEO_BODY + "        if w > 0:\n            log_total = log_total + w * torch.log(f(x, m))\n"
         "    return torch.softmax(log_total, dim=0)\n", {"geometric_ensemble_mean.contract"}),
    _geo("unweighted", CHECK_P + "    masks = all_masks(n)\n"
         "    s = sum(torch.log(f(x, m)) for m in masks) / len(masks)\n    return torch.softmax(s, dim=-1)\n",
         {"geometric_ensemble_mean.contract"}),
    _geo("swapped", CHECK_P + "    log_total = 0\n    for m in all_masks(n):\n        k = int(m.sum())\n"
         "        w = p ** k * (1 - p) ** (n - k)\n"
         "        if w > 0:\n            log_total = log_total + w * torch.log(f(x, m))\n"
         "    return torch.softmax(log_total, dim=-1)\n", {"geometric_ensemble_mean.contract"}),
    _geo("nan_zero_weight", CHECK_P + GEO_BODY + "        log_total = log_total + w * torch.log(f(x, m))\n"
         "    return torch.softmax(log_total, dim=-1)\n", {"geometric_ensemble_mean.safety"}),
    _geo("eps_clamp", CHECK_P + GEO_BODY + "        log_total = log_total + w * torch.log(f(x, m).clamp_min(1e-8))\n"
         "    return torch.softmax(log_total, dim=-1)\n", {"geometric_ensemble_mean.safety"}),
    _geo("eps_added", CHECK_P + GEO_BODY + "        log_total = log_total + w * torch.log(f(x, m) + 1e-6)\n"
         "    return torch.softmax(log_total, dim=-1)\n", {"geometric_ensemble_mean.safety"}),
    _geo("no_valueerror", GEO_BODY + "        if w > 0:\n            log_total = log_total + w * torch.log(f(x, m))\n"
         "    return torch.softmax(log_total, dim=-1)\n", {"geometric_ensemble_mean.contract"}),
    _geo("log_weights_nan", CHECK_P + "    log_total = 0\n    for m in all_masks(n):\n        k = m.sum()\n"
         "        w = torch.exp(k * torch.log(torch.tensor(1 - p)) + (n - k) * torch.log(torch.tensor(p)))\n"
         "        log_total = log_total + w * torch.log(f(x, m))\n"
         "    return torch.softmax(log_total, dim=-1)\n", {"geometric_ensemble_mean.contract"}),
    _geo("batch_normalised", CHECK_P + GEO_BODY + "        if w > 0:\n            log_total = log_total + w * torch.log(f(x, m))\n"
         "    g = torch.exp(log_total)\n    return g / g.sum()\n", {"geometric_ensemble_mean.contract"}),
]

MC_LOOP = "    total = 0\n    for _ in range(k):\n"

MC = [
    # --- correct ------------------------------------------------------------------------------------
    _mc("loop_rand", CHECK_K + MC_LOOP +
        "        m = (torch.rand(n, generator=generator, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / k\n"),
    _mc("bernoulli_matrix", CHECK_K + "    probs = torch.full((k, n), 1 - p, device=x.device)\n"
        "    masks = torch.bernoulli(probs, generator=generator)\n"
        "    return torch.stack([f(x, m) for m in masks]).mean(0)\n"),
    _mc("bernoulli_inplace", CHECK_K + "    outs = []\n    for _ in range(k):\n"
        "        m = torch.empty(n, device=x.device).bernoulli_(1 - p, generator=generator)\n"
        "        outs.append(f(x, m))\n    return sum(outs) / len(outs)\n"),
    _mc("numpy_seeded", CHECK_K + "    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=x.device))\n"
        "    rng = np.random.default_rng(seed)\n"
        "    keep = rng.random((k, n)) < 1 - p\n"
        "    masks = torch.from_numpy(keep.astype(np.float32)).to(x.device)\n"
        "    total = 0\n    for m in masks:\n        total = total + f(x, m)\n    return total / k\n"),
    _mc("where_running_mean", CHECK_K + "    mean = None\n    for i in range(1, k + 1):\n"
        "        u = torch.rand(n, generator=generator, device=x.device)\n"
        "        m = torch.where(u < p, torch.zeros_like(u), torch.ones_like(u))\n"
        "        y = f(x, m)\n        mean = y if mean is None else mean + (y - mean) / i\n    return mean\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _mc("numpy_global_rng", CHECK_K + MC_LOOP +
        "        if generator is None:\n"
        "            m = torch.from_numpy((np.random.random(n) >= p).astype(np.float32)).to(x.device)\n"
        "        else:\n"
        "            m = (torch.rand(n, generator=generator, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.randomness"}),
    # Drops with probability p / 2 (for 0 < p < 1): only the rate is wrong (tests/test_observed_rates.py).
    _mc("half_rate", CHECK_K + MC_LOOP +
        "        m = (torch.rand(n, generator=generator, device=x.device) >= (p / 2 if p < 1 else p)).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.contract"}),
    _mc("swapped", CHECK_K + MC_LOOP +
        "        m = (torch.rand(n, generator=generator, device=x.device) < p).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.contract"}),
    _mc("one_mask_reused", CHECK_K + "    m = (torch.rand(n, generator=generator, device=x.device) >= p).float()\n"
        + MC_LOOP + "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.randomness"}),
    _mc("k_minus_1", CHECK_K + "    total = 0\n    for _ in range(1, k):\n"
        "        m = (torch.rand(n, generator=generator, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / max(k - 1, 1)\n", {"mc_ensemble_mean.contract"}),
    _mc("divide_k_plus_1", CHECK_K + MC_LOOP +
        "        m = (torch.rand(n, generator=generator, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / (k + 1)\n", {"mc_ensemble_mean.contract"}),
    _mc("returns_sum", CHECK_K + MC_LOOP +
        "        m = (torch.rand(n, generator=generator, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total\n", {"mc_ensemble_mean.contract"}),
    _mc("ignores_generator", CHECK_K + MC_LOOP +
        "        m = (torch.rand(n, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.randomness"}),
    _mc("same_every_call", CHECK_K + "    g = torch.Generator(device=x.device).manual_seed(0) if generator is None else generator\n"
        + MC_LOOP + "        m = (torch.rand(n, generator=g, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.randomness"}),
    _mc("shared_across_units", CHECK_K + MC_LOOP +
        "        keep = float(torch.rand(1, generator=generator, device=x.device) >= p)\n"
        "        m = torch.full((n,), keep, device=x.device)\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.randomness"}),
    _mc("coin_flip", CHECK_K + MC_LOOP +
        "        m = torch.randint(0, 2, (n,), generator=generator, device=x.device).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.contract"}),
    _mc("no_valueerror", MC_LOOP +
        "        m = (torch.rand(n, generator=generator, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / max(k, 1)\n", {"mc_ensemble_mean.contract"}),
    _mc("weight_scaling", CHECK_K + "    return f(x, torch.full((n,), 1 - p, device=x.device))\n", {"mc_ensemble_mean.contract"}),
    _mc("batched_masks", CHECK_K + "    masks = (torch.rand(k, n, generator=generator, device=x.device) >= p).float()\n"
        "    return f(x, masks).mean(0)\n", {"mc_ensemble_mean.contract"}),
    _mc("bool_mask", CHECK_K + MC_LOOP +
        "        m = torch.rand(n, generator=generator, device=x.device) >= p\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.contract"}),
    _mc("antithetic", CHECK_K + "    total = 0\n    for i in range(k):\n"
        "        if i % 2 == 0:\n            u = torch.rand(n, generator=generator, device=x.device)\n"
        "        m = ((u >= p) if i % 2 == 0 else (1 - u >= p)).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.randomness"}),
    _mc("generator_once", CHECK_K + "    total = 0\n    for i in range(k):\n"
        "        g = generator if i == 0 else None\n"
        "        m = (torch.rand(n, generator=g, device=x.device) >= p).float()\n"
        "        total = total + f(x, m)\n    return total / k\n", {"mc_ensemble_mean.randomness"}),
]

ALL = ALL_MASKS + EXACT + GEOMETRIC + MC


def load(impl: Impl):
    """The function an implementation defines, compiled in a namespace with torch, numpy and the reference all_masks."""
    import itertools
    import math

    import numpy as np
    import torch

    ns = {"torch": torch, "np": np, "math": math, "itertools": itertools}
    exec(compile(REFERENCE_ALL_MASKS, "<reference all_masks>", "exec"), ns)
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
