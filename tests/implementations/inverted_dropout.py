"""Correct and buggy implementations of assignment 04's graded functions and class.

Each is source code defining ``dropout_inverted``, ``Dropout`` or ``scale_for_inference`` (the same
text can be run against the checks directly or pasted into a notebook's solution cell). A buggy one
names the checks that must catch it; a correct one must pass every check of its target.
"""

from tests.implementations.bernoulli_masks import Impl

CHECK = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
RAND = "torch.rand(x.shape, generator=generator, device=x.device)"


def _di(key, body, fails=()):
    src = "def dropout_inverted(x, p, training=True, generator=None):\n" + body
    return Impl(key, "dropout_inverted", src, frozenset(fails))


def _mod(key, src, fails=()):
    return Impl(key, "Dropout", src, frozenset(fails))


def _sfi(key, body, fails=()):
    src = "def scale_for_inference(model, p):\n" + body
    return Impl(key, "scale_for_inference", src, frozenset(fails))


C, S = {"dropout_inverted.contract"}, {"dropout_inverted.safety"}

INVERTED = [
    # --- correct, written differently -------------------------------------------------------------
    _di("rand_div", CHECK + "    if not training or p == 0:\n        return x.clone()\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    m = ({RAND} >= p).to(x.dtype)\n"
        "    return x * m / (1 - p)\n"),
    _di("bernoulli", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return x * 0.0\n"
        "    q = 1.0 - p\n"
        "    return x * torch.bernoulli(torch.full_like(x, q), generator=generator) / q\n"),
    _di("numpy_mask", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    seed = int(torch.randint(0, 2**62, (1,), generator=generator))\n"
        "    keep = np.random.default_rng(seed).random(tuple(x.shape)) >= p\n"
        "    return x * torch.from_numpy(keep).to(device=x.device, dtype=x.dtype) / (1 - p)\n"),
    _di("where", CHECK + "    if not training:\n        return x\n"
        f"    u = {RAND}\n"
        "    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)\n"
        "    return torch.where(u >= p, x * scale, torch.zeros_like(x))\n"),
    _di("masked_fill", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    drop = {RAND} < p\n"
        "    return (x / (1 - p)).masked_fill(drop, 0.0)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _di("no_scaling", CHECK + "    if not training:\n        return x\n"
        f"    return x * ({RAND} >= p).to(x.dtype)\n", C),
    _di("scale_by_q", CHECK + "    if not training:\n        return x\n"
        f"    return x * ({RAND} >= p).to(x.dtype) * (1 - p)\n", C),
    _di("swapped", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    return x * ({RAND} < p).to(x.dtype) / (1 - p)\n", C),
    _di("divide_by_p", CHECK + "    if not training:\n        return x\n"
        "    if p == 0:\n        return x\n"
        f"    return x * ({RAND} >= p).to(x.dtype) / p\n", C),
    _di("nan_at_p1", CHECK + "    if not training:\n        return x\n"
        f"    return x * ({RAND} >= p).to(x.dtype) / (1 - p)\n", C),
    _di("drops_in_eval", CHECK + "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    return x * ({RAND} >= p).to(x.dtype) / (1 - p)\n", C),
    _di("scales_in_eval", CHECK + "    if not training:\n        return x * (1 - p)\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    return x * ({RAND} >= p).to(x.dtype) / (1 - p)\n", C),
    _di("no_valueerror", "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    return x * ({RAND} >= p).to(x.dtype) / (1 - p)\n", C),
    _di("same_every_call", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    torch.manual_seed(0)\n"
        "    return x * (torch.rand(x.shape, device=x.device) >= p).to(x.dtype) / (1 - p)\n", S),
    _di("one_mask_for_batch", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    m = torch.rand(x.shape[1:], generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / (1 - p)\n", S),
    _di("whole_rows", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    m = torch.rand(x.shape[0], 1, generator=generator, device=x.device) >= p\n"
        "    return x * m.to(x.dtype) / (1 - p)\n", S),
    _di("in_place", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    with torch.no_grad():\n"
        f"        x.mul_(({RAND} >= p).to(x.dtype)).div_(1 - p)\n"
        "    return x\n", S),
    _di("ignores_generator", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    return x * (torch.rand(x.shape, device=x.device) >= p).to(x.dtype) / (1 - p)\n", S),
    _di("float32_output", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    return (x * ({RAND} >= p) / (1 - p)).float()\n", S),
    _di("where_nan_grad", CHECK + "    if not training:\n        return x\n"
        f"    return torch.where({RAND} >= p, x / (1 - p), torch.zeros_like(x))\n", S),
    _di("float32_factor", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    return x * (({RAND} >= p).float() / (1 - p))\n", S),
    _di("numpy_global_rng", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    if generator is None:\n"
        "        keep = torch.from_numpy(np.random.random(tuple(x.shape)) >= p).to(x.device)\n"
        "    else:\n"
        f"        keep = {RAND} >= p\n"
        "    return x * keep.to(x.dtype) / (1 - p)\n", S),
    # Drops with probability p / 2 (for 0 < p < 1) but scales by 1 / q: only the rate is wrong (tests/test_observed_rates.py).
    _di("half_rate", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        f"    return x * ({RAND} >= (p / 2 if p < 1 else p)).to(x.dtype) / (1 - p)\n", C),
    _di("numpy_detached", CHECK + "    if not training:\n        return x\n"
        "    if p == 1:\n        return torch.zeros_like(x)\n"
        "    keep = np.random.random(tuple(x.shape)) >= p\n"
        "    return torch.from_numpy(x.detach().cpu().numpy() * keep / (1 - p)).to(x.device)\n", S),
]

_INIT = (
    "class Dropout(nn.Module):\n"
    "    def __init__(self, p):\n"
    "        super().__init__()\n"
    "        if not 0 <= p <= 1:\n"
    "            raise ValueError(f'p={p}')\n"
    "        self.p = p\n\n"
    "    def forward(self, x):\n"
)
M = {"Dropout.masks"}
MC = {"Dropout.contract"}

MODULES = [
    # --- correct ------------------------------------------------------------------------------------
    _mod("functional", _INIT + "        return F.dropout(x, self.p, training=self.training)\n"),
    _mod("rand", _INIT + "        if not self.training:\n            return x\n"
         "        if self.p == 1:\n            return torch.zeros_like(x)\n"
         "        keep = (torch.rand_like(x) >= self.p).to(x.dtype)\n"
         "        return x * keep / (1 - self.p)\n"),
    _mod("bernoulli_buffer",
         "class Dropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        if not 0.0 <= p <= 1.0:\n"
         "            raise ValueError('p must be in [0, 1]')\n"
         "        self.register_buffer('q', torch.tensor(1.0 - p))\n\n"
         "    def forward(self, x):\n"
         "        if not self.training:\n            return x\n"
         "        if self.q == 0:\n            return torch.zeros_like(x)\n"
         "        return x * torch.bernoulli(torch.full_like(x, float(self.q))) / self.q.to(x.dtype)\n"),
    _mod("where", _INIT + "        if self.training:\n"
         "            scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)\n"
         "            return torch.where(torch.rand_like(x) < self.p, torch.zeros_like(x), x * scale)\n"
         "        return x\n"),
    _mod("nn_dropout_inside",
         "class Dropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        if p < 0 or p > 1:\n"
         "            raise ValueError(p)\n"
         "        self.inner = nn.Dropout(p)\n\n"
         "    def forward(self, x):\n"
         "        return self.inner(x)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _mod("always_drops", _INIT + "        if self.p == 1:\n            return torch.zeros_like(x)\n"
         "        return x * (torch.rand_like(x) >= self.p).to(x.dtype) / (1 - self.p)\n", MC),
    _mod("functional_default_training", _INIT + "        return F.dropout(x, self.p)\n", MC),
    _mod("classic", _INIT + "        if not self.training:\n            return x * (1 - self.p)\n"
         "        return x * (torch.rand_like(x) >= self.p).to(x.dtype)\n", MC),
    _mod("swapped", _INIT + "        if not self.training or self.p == 0:\n            return x\n"
         "        return x * (torch.rand_like(x) < self.p).to(x.dtype) / (1 - self.p) if self.p < 1 else torch.zeros_like(x)\n", MC),
    _mod("p_parameter",
         "class Dropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        if not 0 <= p <= 1:\n            raise ValueError(p)\n"
         "        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=False)\n\n"
         "    def forward(self, x):\n"
         "        return F.dropout(x, float(self.p), training=self.training)\n", MC),
    _mod("no_valueerror",
         "class Dropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        self.p = p\n\n"
         "    def forward(self, x):\n"
         "        return F.dropout(x, min(max(self.p, 0.0), 1.0), training=self.training)\n", MC),
    _mod("valueerror_in_forward",
         "class Dropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        self.p = p\n\n"
         "    def forward(self, x):\n"
         "        return F.dropout(x, self.p, training=self.training)\n", MC),
    _mod("own_flag",
         "class Dropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        if not 0 <= p <= 1:\n            raise ValueError(p)\n"
         "        self.p, self.dropping = p, True\n\n"
         "    def eval(self):\n"
         "        self.dropping = False\n"
         "        return super().eval()\n\n"
         "    def train(self, mode=True):\n"
         "        if mode:\n            self.dropping = True\n"
         "        return super().train(mode)\n\n"
         "    def forward(self, x):\n"
         "        return F.dropout(x, self.p, training=self.dropping)\n", MC),
    # eval() overridden to switch dropping off for good: through a parent model (whose eval() calls each
    # child's train(False), not its eval()) it looks right; switched on the module itself it sticks.
    _mod("eval_override_sticks",
         "class Dropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        if not 0 <= p <= 1:\n            raise ValueError(p)\n"
         "        self.p, self.active = p, True\n\n"
         "    def eval(self):\n"
         "        self.active = False\n"
         "        return super().eval()\n\n"
         "    def forward(self, x):\n"
         "        return F.dropout(x, self.p, training=self.training and self.active)\n", M),
    _mod("where_nan_grad", _INIT + "        if not self.training:\n            return x\n"
         "        keep = torch.rand_like(x) >= self.p\n"
         "        return torch.where(keep, x / (1 - self.p), torch.zeros_like(x))\n", M),
    _mod("mask_cached", _INIT.replace("        self.p = p\n", "        self.p = p\n        self.mask = None\n")
         + "        if not self.training:\n            return x\n"
         "        if self.mask is None or self.mask.shape != x.shape:\n"
         "            self.mask = (torch.rand_like(x) >= self.p).to(x.dtype)\n"
         "        return x * self.mask / (1 - self.p) if self.p < 1 else torch.zeros_like(x)\n", M),
    _mod("seed_at_construction", _INIT.replace("        self.p = p\n", "        self.p = p\n        self.seed = int(torch.randint(0, 2**31, (1,)))\n")
         + "        if not self.training:\n            return x\n"
         "        g = torch.Generator(device=x.device).manual_seed(self.seed)\n"
         "        keep = torch.rand(x.shape, generator=g, device=x.device) >= self.p\n"
         "        return x * keep.to(x.dtype) / (1 - self.p) if self.p < 1 else torch.zeros_like(x)\n", M),
    _mod("one_mask_for_batch", _INIT + "        if not self.training:\n            return x\n"
         "        keep = torch.rand(x.shape[1:], device=x.device) >= self.p\n"
         "        return x * keep.to(x.dtype) / (1 - self.p) if self.p < 1 else torch.zeros_like(x)\n", M),
    _mod("in_place", _INIT + "        if not self.training:\n            return x\n"
         "        if self.p == 1:\n            return torch.zeros_like(x)\n"
         "        with torch.no_grad():\n"
         "            x.mul_((torch.rand_like(x) >= self.p).to(x.dtype)).div_(1 - self.p)\n"
         "        return x\n", M),
    _mod("detached", _INIT + "        if not self.training:\n            return x\n"
         "        if self.p == 1:\n            return torch.zeros_like(x)\n"
         "        keep = (torch.rand_like(x) >= self.p).to(x.dtype)\n"
         "        return (x * keep / (1 - self.p)).detach()\n", M),
]

_COPY = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n    new = copy.deepcopy(model)\n"
_LIN = "    linears = [m for m in new.modules() if isinstance(m, nn.Linear)]\n"
SC, SM = {"scale_for_inference.contract"}, {"scale_for_inference.more"}

SCALERS = [
    # --- correct ------------------------------------------------------------------------------------
    _sfi("deepcopy_loop", _COPY + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.mul_(1 - p)\n    return new\n"),
    _sfi("state_dict", "    if p < 0 or p > 1:\n        raise ValueError(p)\n"
         "    new = copy.deepcopy(model)\n"
         "    state = new.state_dict()\n"
         "    names = [n for n, m in new.named_modules() if isinstance(m, nn.Linear)]\n"
         "    for n in names[1:]:\n        state[n + '.weight'] = state[n + '.weight'] * (1 - p)\n"
         "    new.load_state_dict(state)\n    return new\n"),
    _sfi("rebuild", "    if not 0.0 <= p <= 1.0:\n        raise ValueError('p outside [0, 1]')\n"
         "    layers, seen = [], 0\n"
         "    for layer in model:\n"
         "        if isinstance(layer, nn.Linear):\n"
         "            w = layer.weight.detach()\n"
         "            new = nn.Linear(layer.in_features, layer.out_features, device=w.device, dtype=w.dtype)\n"
         "            with torch.no_grad():\n"
         "                new.weight.copy_(w * (1 - p) if seen else w)\n"
         "                new.bias.copy_(layer.bias)\n"
         "            layers.append(new)\n"
         "            seen += 1\n"
         "        else:\n            layers.append(copy.deepcopy(layer))\n"
         "    return nn.Sequential(*layers).train(model.training)\n"),
    _sfi("enumerate_data", _COPY + "    first = True\n"
         "    for m in new:\n"
         "        if isinstance(m, nn.Linear):\n"
         "            if not first:\n                m.weight.data = m.weight.data * (1.0 - p)\n"
         "            first = False\n    return new\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _sfi("scales_biases", _COPY + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.mul_(1 - p)\n            lin.bias.mul_(1 - p)\n    return new\n", SC | SM),
    _sfi("scales_first_layer", _COPY + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears:\n            lin.weight.mul_(1 - p)\n    return new\n", SC | SM),
    _sfi("scales_by_p", _COPY + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.mul_(p)\n    return new\n", SC | SM),
    _sfi("divides_by_q", _COPY + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.div_(1 - p)\n    return new\n", SC | SM),
    _sfi("in_place", "    if not 0 <= p <= 1:\n        raise ValueError(p)\n"
         "    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]\n"
         "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.mul_(1 - p)\n    return model\n", SC | SM),
    _sfi("unchanged", _COPY + "    return new\n", SC | SM),
    _sfi("only_last_layer", _COPY + _LIN + "    with torch.no_grad():\n"
         "        linears[-1].weight.mul_(1 - p)\n    return new\n", SC | SM),
    _sfi("returns_state_dict", _COPY + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.mul_(1 - p)\n    return new.state_dict()\n", SC | SM),
    _sfi("no_valueerror", "    new = copy.deepcopy(model)\n" + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.mul_(1 - p)\n    return new\n", SM),
    _sfi("rebuild_new_relu", "    if not 0 <= p <= 1:\n        raise ValueError(p)\n"
         "    layers, seen = [], 0\n"
         "    for layer in model:\n"
         "        if isinstance(layer, nn.Linear):\n"
         "            w = layer.weight.detach()\n"
         "            new = nn.Linear(layer.in_features, layer.out_features, device=w.device, dtype=w.dtype)\n"
         "            with torch.no_grad():\n"
         "                new.weight.copy_(w * (1 - p) if seen else w)\n"
         "                new.bias.copy_(layer.bias)\n"
         "            layers.append(new)\n            seen += 1\n"
         "        else:\n            layers.append(nn.ReLU())\n"
         "    return nn.Sequential(*layers)\n", SC | SM),
    _sfi("returns_eval_mode", _COPY + _LIN + "    with torch.no_grad():\n"
         "        for lin in linears[1:]:\n            lin.weight.mul_(1 - p)\n    return new.eval()\n", SM),
    _sfi("float32_rebuild", "    if not 0 <= p <= 1:\n        raise ValueError(p)\n"
         "    layers, seen = [], 0\n"
         "    for layer in model:\n"
         "        if isinstance(layer, nn.Linear):\n"
         "            new = nn.Linear(layer.in_features, layer.out_features).to(layer.weight.device)\n"
         "            with torch.no_grad():\n"
         "                new.weight.copy_(layer.weight * (1 - p) if seen else layer.weight)\n"
         "                new.bias.copy_(layer.bias)\n"
         "            layers.append(new)\n            seen += 1\n"
         "        else:\n            layers.append(layer)\n"
         "    return nn.Sequential(*layers)\n", SM),
]

ALL = INVERTED + MODULES + SCALERS


def load(impl: Impl):
    """What an implementation defines, compiled in a namespace with torch, nn, F, numpy and copy."""
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    ns = {"torch": torch, "np": np, "nn": nn, "F": F, "copy": copy}
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
