"""Correct and buggy implementations of assignment 06's graded functions and class.

Each is source code (run against the checks directly, or pasted into a notebook's solution cell)
defining the graded name. A buggy one names the checks that must catch it; a correct one must pass
every check of its target.
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


P_CHECK = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
DIM_CHECK = "    if x.dim() != 3:\n        raise ValueError('x must be (T, B, H)')\n"
HEAD = P_CHECK + DIM_CHECK + "    if not training or p == 0:\n        return x\n" \
    "    if p == 1:\n        return torch.zeros_like(x)\n    T, B, H = x.shape\n    q = 1 - p\n"

CONTRACT, RANDOM, SAFETY = "locked_dropout.contract", "locked_dropout.randomness", "locked_dropout.safety"


def _ld(key, body, fails=(), head=HEAD):
    src = "def locked_dropout(x, p, training=True, generator=None):\n" + head + body
    return Impl(key, "locked_dropout", src, frozenset(fails))


LOCKED = [
    # --- correct, written differently -------------------------------------------------------------
    _ld("rand_broadcast", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n"),
    _ld("bernoulli", "    m = torch.bernoulli(torch.full((1, B, H), q, device=x.device, dtype=x.dtype), generator=generator)\n"
        "    return x * m / q\n"),
    _ld("numpy_seeded", "    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=x.device))\n"
        "    keep = np.random.default_rng(seed).random((B, H)) >= p\n"
        "    return x * torch.from_numpy(keep).to(device=x.device, dtype=x.dtype) / q\n"),
    _ld("where", "    u = torch.rand((B, H), generator=generator, device=x.device)\n"
        "    return torch.where((u < p).unsqueeze(0), torch.zeros_like(x), x / q)\n"),
    _ld("expand", "    m = (torch.rand(B, H, generator=generator, device=x.device) >= p).to(x.dtype) / q\n"
        "    return x * m.expand(T, B, H)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _ld("fresh_each_step", "    m = torch.rand(x.shape, generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT}),
    _ld("shared_across_batch", "    m = torch.rand((1, 1, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {RANDOM}),
    _ld("batch_first_confusion", "    # treats x as (B, T, H): one mask per 'sequence' x[i], shared along axis 1\n"
        "    m = torch.rand((x.shape[0], 1, x.shape[2]), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT}),
    _ld("mask_TH_shared_over_B", "    m = torch.rand((T, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.unsqueeze(1).to(x.dtype) / q\n", {CONTRACT}),
    _ld("no_scaling", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype)\n", {CONTRACT}),
    _ld("drops_in_eval", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT},
        head=P_CHECK + DIM_CHECK + "    if p == 1:\n        return torch.zeros_like(x)\n    T, B, H = x.shape\n    q = 1 - p\n"),
    _ld("swapped_keep_drop", "    m = torch.rand((1, B, H), generator=generator, device=x.device) < p\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT}),
    _ld("same_every_call", "    torch.manual_seed(0)\n    m = torch.rand((1, B, H), device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {RANDOM}),
    _ld("in_place", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    with torch.no_grad():\n        x.mul_(m.to(x.dtype) / q)\n    return x\n", {SAFETY}),
    _ld("nan_at_p1", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT},
        head=P_CHECK + DIM_CHECK + "    if not training:\n        return x\n    T, B, H = x.shape\n    q = 1 - p\n"),
    _ld("ignores_generator", "    m = torch.rand((1, B, H), device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {RANDOM}),
    _ld("no_dim_check", "    m = torch.rand((1,) + tuple(x.shape[1:]), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT},
        head=P_CHECK + "    if not training or p == 0:\n        return x\n    if p == 1:\n        return torch.zeros_like(x)\n"
        "    q = 1 - p\n"),
    _ld("whole_sequences", "    m = torch.rand((1, B, 1), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {RANDOM}),
    _ld("numpy_detached", "    keep = np.random.random((1, B, H)) >= p\n"
        "    return torch.from_numpy(x.detach().cpu().numpy() * keep / q).to(x.device)\n", {SAFETY}),
    _ld("float32_cast", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return (x * m / q).float()\n", {SAFETY}),
    _ld("valueerror_only_in_training", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT},
        head="    if not training or p == 0:\n        return x\n" + P_CHECK + DIM_CHECK
        + "    if p == 1:\n        return torch.zeros_like(x)\n    T, B, H = x.shape\n    q = 1 - p\n"),
    _ld("where_nan_grad", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return torch.where(m, x / q, torch.zeros_like(x))\n", {SAFETY},
        head=P_CHECK + DIM_CHECK + "    if not training:\n        return x\n    T, B, H = x.shape\n    q = 1 - p\n"),
    _ld("numpy_global_rng", "    if generator is None:\n"
        "        m = torch.from_numpy(np.random.random((1, B, H)) >= p).to(x.device)\n"
        "    else:\n"
        "        m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / q\n", {RANDOM}),
    # Drops with probability p / 2 (for 0 < p < 1) but scales by 1 / q: only the rate is wrong (tests/test_observed_rates.py).
    _ld("half_rate", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= (p / 2 if p < 1 else p)\n"
        "    return x * m.to(x.dtype) / q\n", {CONTRACT}),
    _ld("scaled_by_p", "    m = torch.rand((1, B, H), generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / p\n", {CONTRACT}),
]


# --- VariationalRNNCell ---------------------------------------------------------------------------
STRUCT, CRANDOM = "VariationalRNNCell.structure", "VariationalRNNCell.randomness"

INIT = '''class VariationalRNNCell(nn.Module):
    def __init__(self, input_size, hidden_size, p_input, p_hidden):
        super().__init__()
        for p in (p_input, p_hidden):
            if not 0 <= p <= 1:
                raise ValueError(f"p={p}")
        self.ih = nn.Linear(input_size, hidden_size)
        self.hh = nn.Linear(hidden_size, hidden_size, bias=False)
        self.hidden_size, self.p_input, self.p_hidden = hidden_size, p_input, p_hidden
'''

MASKS = '''
    def mask(self, shape, p, like):
        if not self.training or p == 0:
            return torch.ones(shape, device=like.device, dtype=like.dtype)
        if p == 1:
            return torch.zeros(shape, device=like.device, dtype=like.dtype)
        return (torch.rand(shape, device=like.device) >= p).to(like.dtype) / (1 - p)
'''

LOOP = '''
    def forward(self, x):
        T, B, _ = x.shape
        mx = self.mask((B, x.shape[2]), self.p_input, x)
        mh = self.mask((B, self.hidden_size), self.p_hidden, x)
        h = x.new_zeros(B, self.hidden_size)
        outs = []
        for t in range(T):
            h = torch.tanh(self.ih(x[t] * mx) + self.hh(h * mh))
            outs.append(h)
        return torch.stack(outs)
'''


def _cell(key, source, fails=()):
    return Impl(key, "VariationalRNNCell", source, frozenset(fails))


def _variant(old: str, new: str, base: str = INIT + MASKS + LOOP) -> str:
    assert old in base, old
    return base.replace(old, new)


CELLS = [
    # --- correct ----------------------------------------------------------------------------------
    _cell("loop", INIT + MASKS + LOOP),
    _cell("whole_sequence_ih", INIT + '''
    def forward(self, x):
        T, B, I = x.shape
        q_in, q_h = 1 - self.p_input, 1 - self.p_hidden
        if self.training:
            mx = torch.bernoulli(torch.full((1, B, I), q_in, device=x.device)) / q_in if q_in > 0 else x.new_zeros(1, B, I)
            mh = torch.bernoulli(torch.full((B, self.hidden_size), q_h, device=x.device)) / q_h if q_h > 0 else x.new_zeros(B, self.hidden_size)
        else:
            mx, mh = x.new_ones(1, B, I), x.new_ones(B, self.hidden_size)
        xs = self.ih(x * mx)  # all steps at once: ih sees (T, B, I)
        h, outs = x.new_zeros(B, self.hidden_size), []
        for t in range(T):
            h = torch.tanh(xs[t] + self.hh(h * mh))
            outs.append(h)
        return torch.stack(outs)
'''),
    _cell("functional_dropout_masks", INIT + '''
    def forward(self, x):
        T, B, I = x.shape
        mx = F.dropout(x.new_ones(B, I), self.p_input, self.training)
        mh = F.dropout(x.new_ones(B, self.hidden_size), self.p_hidden, self.training)
        h, outs = x.new_zeros(B, self.hidden_size), []
        for x_t in x:
            h = torch.tanh(self.ih(x_t * mx) + self.hh(h * mh))
            outs.append(h)
        return torch.stack(outs, 0)
'''),
    _cell("skips_hh_at_first_step", INIT + '''
    def forward(self, x):
        T, B, I = x.shape
        def draw(shape, p):
            if not self.training:
                return None
            u = torch.rand(shape, device=x.device)
            return torch.where(u < p, torch.zeros_like(u), torch.full_like(u, 1 / (1 - p) if p < 1 else 0.0))
        mx, mh = draw((B, I), self.p_input), draw((B, self.hidden_size), self.p_hidden)
        outs = []
        for t in range(T):
            xin = x[t] if mx is None else x[t] * mx
            pre = self.ih(xin)
            if t > 0:  # h_0 = 0 contributes nothing
                pre = pre + self.hh(outs[-1] if mh is None else outs[-1] * mh)
            outs.append(torch.tanh(pre))
        return torch.stack(outs)
'''),
    _cell("masked_fill", INIT + '''
    def forward(self, x):
        T, B, I = x.shape
        train = self.training
        drop_x = torch.rand(B, I, device=x.device) < self.p_input if train else None
        drop_h = torch.rand(B, self.hidden_size, device=x.device) < self.p_hidden if train else None
        qx, qh = 1 - self.p_input, 1 - self.p_hidden
        h, outs = x.new_zeros(B, self.hidden_size), []
        for t in range(T):
            xt = (x[t] / qx).masked_fill(drop_x, 0.0) if train else x[t]
            ht = (h / qh).masked_fill(drop_h, 0.0) if train else h
            h = torch.tanh(self.ih(xt) + self.hh(ht))
            outs.append(h)
        return torch.stack(outs)
'''),
    # --- buggy ------------------------------------------------------------------------------------
    _cell("fresh_each_step", _variant(
        "            h = torch.tanh(self.ih(x[t] * mx) + self.hh(h * mh))",
        "            mx = self.mask((B, x.shape[2]), self.p_input, x)\n"
        "            mh = self.mask((B, self.hidden_size), self.p_hidden, x)\n"
        "            h = torch.tanh(self.ih(x[t] * mx) + self.hh(h * mh))"), {STRUCT}),
    _cell("no_recurrent_mask", _variant("self.hh(h * mh)", "self.hh(h)"), {STRUCT}),
    _cell("shared_across_batch", _variant(
        "        mx = self.mask((B, x.shape[2]), self.p_input, x)\n        mh = self.mask((B, self.hidden_size), self.p_hidden, x)",
        "        mx = self.mask((1, x.shape[2]), self.p_input, x)\n        mh = self.mask((1, self.hidden_size), self.p_hidden, x)"),
        {CRANDOM}),
    _cell("no_scaling", _variant("/ (1 - p)", ""), {STRUCT}),
    _cell("dropout_in_eval", _variant("if not self.training or p == 0:", "if p == 0:"), {STRUCT, CRANDOM}),
    _cell("masks_cached", _variant(
        "        mx = self.mask((B, x.shape[2]), self.p_input, x)\n        mh = self.mask((B, self.hidden_size), self.p_hidden, x)",
        "        if not hasattr(self, 'cached') or not self.training:\n"
        "            self.cached = (self.mask((B, x.shape[2]), self.p_input, x), self.mask((B, self.hidden_size), self.p_hidden, x))\n"
        "        mx, mh = self.cached"), {CRANDOM}),
    _cell("swapped_keep_drop", _variant(">= p).to(like.dtype) / (1 - p)", "< p).to(like.dtype) / (1 - p)"), {STRUCT}),
    _cell("swapped_probabilities", _variant(
        "        mx = self.mask((B, x.shape[2]), self.p_input, x)\n        mh = self.mask((B, self.hidden_size), self.p_hidden, x)",
        "        mx = self.mask((B, x.shape[2]), self.p_hidden, x)\n        mh = self.mask((B, self.hidden_size), self.p_input, x)"),
        {STRUCT}),
    _cell("masks_the_returned_state", _variant(
        "            h = torch.tanh(self.ih(x[t] * mx) + self.hh(h * mh))",
        "            h = torch.tanh(self.ih(x[t] * mx) + self.hh(h)) * mh"), {STRUCT}),
    _cell("relu_not_tanh", _variant("torch.tanh(", "torch.relu("), {STRUCT}),
    _cell("no_valueerror", _variant(
        "        for p in (p_input, p_hidden):\n            if not 0 <= p <= 1:\n                raise ValueError(f\"p={p}\")\n", ""),
        {STRUCT}),
    _cell("mask_after_hh", _variant("self.hh(h * mh)", "self.hh(h) * mh"), {STRUCT}),
    _cell("no_gradients", _variant("    def forward(self, x):\n", "    @torch.no_grad()\n    def forward(self, x):\n"), {STRUCT}),
    _cell("hh_with_bias", _variant("self.hh = nn.Linear(hidden_size, hidden_size, bias=False)",
                                   "self.hh = nn.Linear(hidden_size, hidden_size)"), {STRUCT}),
    _cell("learnable_h0", _variant("        self.hidden_size, self.p_input, self.p_hidden = hidden_size, p_input, p_hidden\n",
                                   "        self.hidden_size, self.p_input, self.p_hidden = hidden_size, p_input, p_hidden\n"
                                   "        self.h0 = nn.Parameter(torch.zeros(hidden_size))\n"), {STRUCT}),
    _cell("whole_sequences_dropped", _variant(
        "        mx = self.mask((B, x.shape[2]), self.p_input, x)\n        mh = self.mask((B, self.hidden_size), self.p_hidden, x)",
        "        mx = self.mask((B, 1), self.p_input, x)\n        mh = self.mask((B, 1), self.p_hidden, x)"), {CRANDOM}),
]


# --- zoneout ------------------------------------------------------------------------------------------
ZC, ZR, ZS = "zoneout.contract", "zoneout.randomness", "zoneout.safety"
ZHEAD = ("    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
         "    if h_prev.shape != h_new.shape:\n        raise ValueError('h_prev and h_new must have the same shape')\n"
         "    if not training:\n        return p * h_prev + (1 - p) * h_new\n")


def _zo(key, body, fails=(), head=ZHEAD):
    src = "def zoneout(h_prev, h_new, p, training=True, generator=None):\n" + head + body
    return Impl(key, "zoneout", src, frozenset(fails))


ZONEOUTS = [
    # --- correct ----------------------------------------------------------------------------------
    _zo("where", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n"),
    _zo("bernoulli_mix", "    m = torch.bernoulli(torch.full_like(h_prev, p), generator=generator)\n"
        "    return m * h_prev + (1 - m) * h_new\n"),
    _zo("lerp", "    m = (torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p).to(h_prev.dtype)\n"
        "    return h_new + m * (h_prev - h_new)\n"),
    _zo("numpy_seeded", "    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=h_prev.device))\n"
        "    keep = np.random.default_rng(seed).random(tuple(h_prev.shape)) < p\n"
        "    return torch.where(torch.from_numpy(keep).to(h_prev.device), h_prev, h_new)\n"),
    _zo("clone_and_index", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    out = h_new.clone()\n    out[keep] = h_prev[keep]\n    return out\n"),
    # --- buggy ------------------------------------------------------------------------------------
    _zo("swapped_roles", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_new, h_prev)\n", {ZC}),
    _zo("zeroing", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) >= p\n"
        "    return h_new * keep.to(h_new.dtype)\n", {ZC}),
    _zo("inverted_scaling", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev / p, h_new / (1 - p))\n", {ZC}),
    _zo("eval_returns_new", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC},
        head=ZHEAD.replace("return p * h_prev + (1 - p) * h_new", "return h_new")),
    _zo("eval_swapped", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC},
        head=ZHEAD.replace("return p * h_prev + (1 - p) * h_new", "return (1 - p) * h_prev + p * h_new")),
    _zo("eval_random", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC},
        head=ZHEAD.replace("    if not training:\n        return p * h_prev + (1 - p) * h_new\n", "")),
    _zo("one_mask_for_batch", "    keep = torch.rand(h_prev.shape[-1:], generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZR}),
    _zo("whole_rows", "    keep = torch.rand((h_prev.shape[0], 1), generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZR}),
    _zo("same_every_call", "    torch.manual_seed(3)\n    keep = torch.rand(h_prev.shape, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZR}),
    _zo("ignores_generator", "    keep = torch.rand(h_prev.shape, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZR}),
    _zo("in_place", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    with torch.no_grad():\n        h_prev[~keep] = h_new[~keep]\n    return h_prev\n", {ZS}),
    _zo("no_shape_check", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC},
        head=ZHEAD.replace("    if h_prev.shape != h_new.shape:\n        raise ValueError('h_prev and h_new must have the same shape')\n", "")),
    _zo("no_p_check", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC},
        head=ZHEAD.replace("    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n", "")),
    _zo("numpy_detached", "    keep = np.random.random(tuple(h_prev.shape)) < p\n"
        "    out = np.where(keep, h_prev.detach().cpu().numpy(), h_new.detach().cpu().numpy())\n"
        "    return torch.from_numpy(out).to(h_prev.device)\n", {ZS}),
    _zo("shape_check_only_in_training", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC},
        head="    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
        "    if not training:\n        return p * h_prev + (1 - p) * h_new\n"
        "    if h_prev.shape != h_new.shape:\n        raise ValueError('h_prev and h_new must have the same shape')\n"),
    _zo("two_dimensional_only", "    B, H = h_prev.shape[0], h_prev.shape[-1]\n"
        "    keep = torch.rand((B, H), generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC}),
    _zo("numpy_global_rng", "    if generator is None:\n"
        "        keep = torch.from_numpy(np.random.random(tuple(h_prev.shape)) < p).to(h_prev.device)\n"
        "    else:\n"
        "        keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZR}),
    # Keeps the old value with probability p / 2 (for 0 < p < 1): only the rate is wrong (tests/test_observed_rates.py).
    _zo("half_rate", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < (p / 2 if p < 1 else p)\n"
        "    return torch.where(keep, h_prev, h_new)\n", {ZC}),
    _zo("float32_cast", "    keep = torch.rand(h_prev.shape, generator=generator, device=h_prev.device) < p\n"
        "    return torch.where(keep, h_prev, h_new).float()\n", {ZS}),
]

ALL = LOCKED + CELLS + ZONEOUTS


def load(impl: Impl):
    """The function or class an implementation defines, compiled in a namespace with torch, nn, F and numpy."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    ns = {"torch": torch, "np": np, "nn": nn, "F": F}
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
