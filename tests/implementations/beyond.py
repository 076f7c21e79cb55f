"""Correct and buggy implementations of assignment 07's graded functions.

Each is source code defining ``mc_dropout_predict``, ``dropconnect_linear``, ``gaussian_dropout`` or
``drop_path`` (the same text can be run against the checks directly or pasted into a notebook's solution
cell). A buggy one names the checks that must catch it; a correct one must pass every check of its target.
The correct ones are written differently from the reference solution and from each other.
"""

from tests.implementations.bernoulli_masks import Impl

# ---------------------------------------------------------------------------------------------
# mc_dropout_predict
# ---------------------------------------------------------------------------------------------
MC, MM = {"mc_dropout_predict.contract"}, {"mc_dropout_predict.more"}

_MC_HEAD = "def mc_dropout_predict(model, x, n_samples):\n"
_MC_CHECK = "    if n_samples < 2:\n        raise ValueError('n_samples must be at least 2')\n"
_MC_SWITCH = (
    "    modes = [(m, m.training) for m in model.modules()]\n"
    "    model.eval()\n"
    "    for m in model.modules():\n"
    "        if isinstance(m, torch.nn.modules.dropout._DropoutNd):\n"
    "            m.train()\n"
)
_MC_RESTORE = "    for m, mode in modes:\n        m.train(mode)\n"


def _mc(key, body, fails=()):
    return Impl(key, "mc_dropout_predict", _MC_HEAD + body, frozenset(fails))


def _mc_std(stack_and_return, check=_MC_CHECK, switch=_MC_SWITCH, restore=_MC_RESTORE):
    """A body: validate, switch modes, run the passes (no_grad), restore, then ``stack_and_return``."""
    return (check + switch + "    with torch.no_grad():\n        outs = torch.stack([model(x) for _ in range(n_samples)])\n"
            + restore + stack_and_return)


MC_IMPLS = [
    # --- correct, written differently -------------------------------------------------------------
    _mc("modes_list", _mc_std("    return outs.mean(0), outs.std(0)\n")),
    _mc("class_names_inference_mode",
        "    if not n_samples >= 2:\n        raise ValueError(n_samples)\n"
        "    saved = {name: m.training for name, m in model.named_modules()}\n"
        "    drops = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)\n"
        "    for m in model.modules():\n"
        "        m.training = isinstance(m, drops)\n"
        "    try:\n"
        "        with torch.inference_mode():\n"
        "            outs = [model(x) for _ in range(n_samples)]\n"
        "    finally:\n"
        "        for name, m in model.named_modules():\n"
        "            m.training = saved[name]\n"
        "    y = torch.stack(outs)\n"
        "    return y.mean(dim=0), y.std(dim=0, unbiased=False)\n"),
    _mc("welford",
        "    if n_samples < 2:\n        raise ValueError('need two passes for a spread')\n"
        "    before = [m.training for m in model.modules()]\n"
        "    for m in model.modules():  # not m.train(...): that would also switch m's children\n"
        "        m.training = isinstance(m, torch.nn.modules.dropout._DropoutNd)\n"
        "    mean = m2 = None\n"
        "    with torch.no_grad():\n"
        "        for k in range(1, n_samples + 1):\n"
        "            y = model(x)\n"
        "            if mean is None:\n"
        "                mean, m2 = y.clone(), torch.zeros_like(y)\n"
        "                continue\n"
        "            delta = y - mean\n"
        "            mean = mean + delta / k\n"
        "            m2 = m2 + delta * (y - mean)\n"
        "    for m, mode in zip(model.modules(), before):\n"
        "        m.train(mode)\n"
        "    return mean, torch.sqrt(m2 / n_samples)\n"),
    _mc("var_sqrt_eval_then_train",
        "    if n_samples < 2:\n        raise ValueError(n_samples)\n"
        "    state = {m: m.training for m in model.modules()}\n"
        "    model.eval()\n"
        "    for m in model.modules():\n"
        "        if 'Dropout' in type(m).__name__:\n"
        "            m.train()\n"
        "    with torch.no_grad():\n"
        "        ys = torch.stack([model(x) for _ in range(n_samples)])\n"
        "    for m, t in state.items():\n"
        "        m.training = t\n"
        "    return ys.mean(0), ys.var(0).sqrt()\n"),
    # --- buggy ----------------------------------------------------------------------------------------
    _mc("train_everything",  # the model.train() trap: batch norm uses batch statistics and updates its running ones
        _mc_std("    return outs.mean(0), outs.std(0)\n",
                switch="    modes = [(m, m.training) for m in model.modules()]\n    model.train()\n"), MC | MM),
    _mc("eval_only", _mc_std("    return outs.mean(0), outs.std(0)\n",
                             switch="    modes = [(m, m.training) for m in model.modules()]\n    model.eval()\n"), MC | MM),
    _mc("no_restore", _mc_std("    return outs.mean(0), outs.std(0)\n", restore=""), MC | MM),
    _mc("restore_top_only", _mc_std("    return outs.mean(0), outs.std(0)\n",
                                    switch="    was = model.training\n" + _MC_SWITCH, restore="    model.train(was)\n"), MM),
    _mc("children_only", _mc_std("    return outs.mean(0), outs.std(0)\n", switch=_MC_SWITCH.replace("model.modules():\n        if", "model.children():\n        if")), MM),
    _mc("only_nn_dropout", _mc_std("    return outs.mean(0), outs.std(0)\n",
                                   switch=_MC_SWITCH.replace("torch.nn.modules.dropout._DropoutNd", "nn.Dropout")), MM),
    _mc("with_grad", _MC_CHECK + _MC_SWITCH + "    outs = torch.stack([model(x) for _ in range(n_samples)])\n" + _MC_RESTORE
        + "    return outs.mean(0), outs.std(0)\n", MC | MM),
    _mc("variance", _mc_std("    return outs.mean(0), outs.var(0)\n"), MC | MM),
    _mc("swapped_return", _mc_std("    return outs.std(0), outs.mean(0)\n"), MC | MM),
    _mc("last_pass_as_mean", _mc_std("    return outs[-1], outs.std(0)\n"), MC | MM),
    _mc("standard_error", _mc_std("    return outs.mean(0), outs.std(0) / n_samples ** 0.5\n"), MC | MM),
    _mc("extra_pass_for_shape", _MC_CHECK + _MC_SWITCH
        + "    with torch.no_grad():\n        shape = model(x).shape\n"
        "        outs = torch.stack([model(x) for _ in range(n_samples)]).view(n_samples, *shape)\n"
        + _MC_RESTORE + "    return outs.mean(0), outs.std(0)\n", MC | MM),
    _mc("seeded_loop", _MC_CHECK + _MC_SWITCH
        + "    outs = []\n    with torch.no_grad():\n        for _ in range(n_samples):\n"
        "            torch.manual_seed(0)\n            outs.append(model(x))\n"
        + _MC_RESTORE + "    outs = torch.stack(outs)\n    return outs.mean(0), outs.std(0)\n", MC | MM),
    _mc("no_valueerror", _mc_std("    return outs.mean(0), outs.std(0, unbiased=False)\n", check=""), MC),
    _mc("float32_result", _mc_std("    return outs.mean(0).float(), outs.std(0).float()\n"), MM),
    _mc("clamps_x_in_place", "    x.clamp_(-1.0, 1.0)\n" + _mc_std("    return outs.mean(0), outs.std(0)\n"), MM),
    _mc("numpy_result", _mc_std("    return outs.mean(0).cpu().numpy(), outs.std(0).cpu().numpy()\n"), MC | MM),
]

# ---------------------------------------------------------------------------------------------
# dropconnect_linear
# ---------------------------------------------------------------------------------------------
DC, DS = {"dropconnect_linear.contract"}, {"dropconnect_linear.safety"}
OWN_GEN = ("    if generator is None:  # a generator of its own, seeded from the OS: ignores torch.manual_seed\n"
           "        generator = torch.Generator(device={dev})\n        generator.seed()\n")
_DC_HEAD = "def dropconnect_linear(x, weight, bias, p, training=True, generator=None):\n"
_DC_CHECK = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
_DC_EVAL = "    if not training or p == 0:\n        return F.linear(x, weight, bias)\n"
_DC_P1 = "    if p == 1:\n        return F.linear(x, torch.zeros_like(weight), bias)\n"
_DC_RAND = "torch.rand(weight.shape, generator=generator, device=weight.device, dtype=weight.dtype)"


def _dc(key, body, fails=()):
    return Impl(key, "dropconnect_linear", _DC_HEAD + body, frozenset(fails))


def _dc_plain(apply, check=_DC_CHECK, evaluation=_DC_EVAL, p1=_DC_P1):
    return check + evaluation + p1 + apply


DC_IMPLS = [
    # --- correct ----------------------------------------------------------------------------------
    _dc("rand_linear", _dc_plain(f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
                                 "    return F.linear(x, weight * keep / (1 - p), bias)\n")),
    _dc("bernoulli_matmul",
        "    if p < 0 or p > 1:\n        raise ValueError(p)\n"
        "    if training and p > 0:\n"
        "        q = 1.0 - p\n"
        "        m = torch.bernoulli(torch.full_like(weight, q), generator=generator)\n"
        "        w = weight * m / q if q > 0 else weight * 0.0\n"
        "    else:\n"
        "        w = weight\n"
        "    y = x @ w.T\n"
        "    return y if bias is None else y + bias\n"),
    _dc("where_einsum",
        "    if not 0.0 <= p <= 1.0:\n        raise ValueError('p outside [0, 1]')\n"
        "    w = weight\n"
        "    if training:\n"
        f"        u = {_DC_RAND}\n"
        "        w = torch.where(u >= p, weight / (1 - p) if p < 1 else weight * 0, torch.zeros_like(weight))\n"
        "    y = torch.einsum('...i,oi->...o', x, w)\n"
        "    if bias is not None:\n        y = y + bias\n"
        "    return y\n"),
    _dc("masked_fill", _dc_plain(f"    drop = {_DC_RAND} < p\n"
                                 "    return F.linear(x, (weight / (1 - p)).masked_fill(drop, 0.0), bias)\n")),
    # --- buggy ----------------------------------------------------------------------------------------
    _dc("per_example_masks", _dc_plain(
        "    keep = (torch.rand(x.shape[:-1] + weight.shape, generator=generator, device=weight.device) >= p).to(weight.dtype)\n"
        "    y = torch.einsum('...i,...oi->...o', x, weight * keep / (1 - p))\n"
        "    return y if bias is None else y + bias\n"), DC | DS),
    _dc("masks_the_bias", _dc_plain(
        f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
        "    kb = (torch.rand(bias.shape, generator=generator, device=bias.device) >= p).to(bias.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias * kb / (1 - p))\n"), DC | DS),
    _dc("no_scaling", _dc_plain(f"    return F.linear(x, weight * ({_DC_RAND} >= p).to(weight.dtype), bias)\n"), DC | DS),
    _dc("divide_by_p", _dc_plain(f"    return F.linear(x, weight * ({_DC_RAND} >= p).to(weight.dtype) / p, bias)\n"), DC | DS),
    _dc("swapped", _dc_plain(f"    return F.linear(x, weight * ({_DC_RAND} < p).to(weight.dtype) / (1 - p), bias)\n"), DC),
    _dc("nan_at_p1", _dc_plain(f"    return F.linear(x, weight * ({_DC_RAND} >= p).to(weight.dtype) / (1 - p), bias)\n", p1=""), DC),
    _dc("drops_in_eval", _dc_plain(f"    return F.linear(x, weight * ({_DC_RAND} >= p).to(weight.dtype) / (1 - p), bias)\n",
                                   evaluation="    if p == 0:\n        return F.linear(x, weight, bias)\n"), DC | DS),
    _dc("eval_scales_by_q", _dc_plain(f"    return F.linear(x, weight * ({_DC_RAND} >= p).to(weight.dtype) / (1 - p), bias)\n",
                                      evaluation="    if not training:\n        return F.linear(x, weight * (1 - p), bias)\n"
                                                 "    if p == 0:\n        return F.linear(x, weight, bias)\n"), DC | DS),
    _dc("no_valueerror", _dc_plain(f"    return F.linear(x, weight * ({_DC_RAND} >= p).to(weight.dtype) / (1 - p), bias)\n",
                                   check=""), DC),
    _dc("dropout_on_inputs", _dc_plain(
        "    keep = (torch.rand(1, weight.shape[1], generator=generator, device=weight.device) >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias)\n"), DC | DS),
    _dc("dropout_on_outputs", _dc_plain(
        "    keep = (torch.rand(weight.shape[0], 1, generator=generator, device=weight.device) >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias)\n"), DC | DS),
    _dc("same_every_call", _dc_plain(
        "    g = torch.Generator(device=weight.device).manual_seed(0)\n"
        "    keep = (torch.rand(weight.shape, generator=g, device=weight.device) >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias)\n"), DS),
    _dc("ignores_generator", _dc_plain(
        "    keep = (torch.rand(weight.shape, device=weight.device) >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias)\n"), DS),
    _dc("weight_in_place", _dc_plain(
        f"    with torch.no_grad():\n        weight.mul_(({_DC_RAND} >= p).to(weight.dtype) / (1 - p))\n"
        "    return F.linear(x, weight, bias)\n"), DS),
    _dc("detached", _dc_plain(
        f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias).detach()\n"), DS),
    _dc("float32_result", _dc_plain(
        f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias).float()\n"), DS),
    _dc("bias_required", _dc_plain(
        f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
        "    return x @ (weight * keep / (1 - p)).T + bias\n"), DS),
    _dc("matrices_only", _dc_plain(
        f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
        "    return torch.addmm(bias, x, (weight * keep / (1 - p)).T)\n"), DS),
    _dc("p1_bias_expand", _dc_plain(
        f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias)\n",
        p1="    if p == 1:  # the bias alone; fails when bias is None\n"
           "        return bias.expand(*x.shape[:-1], weight.shape[0]).clone()\n"), DS),
    _dc("own_generator_when_none", _dc_plain(
        OWN_GEN.format(dev="weight.device") + f"    keep = ({_DC_RAND} >= p).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias)\n"), DS),
    # drops with probability p / 2 for 0 < p < 1, otherwise correct: only the drop-rate properties may fail
    _dc("half_rate", _dc_plain(
        "    keep = (torch.rand(weight.shape, generator=generator, device=weight.device) >= p / 2).to(weight.dtype)\n"
        "    return F.linear(x, weight * keep / (1 - p), bias)\n"), DC),
]

# ---------------------------------------------------------------------------------------------
# gaussian_dropout
# ---------------------------------------------------------------------------------------------
GC, GS = {"gaussian_dropout.contract"}, {"gaussian_dropout.safety"}
_G_HEAD = "def gaussian_dropout(x, p, training=True, generator=None):\n"
_G_CHECK = "    if not 0 <= p < 1:\n        raise ValueError(f'p={p}')\n"
_G_EVAL = "    if not training or p == 0:\n        return x\n"
_G_RANDN = "torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)"


def _g(key, body, fails=()):
    return Impl(key, "gaussian_dropout", _G_HEAD + body, frozenset(fails))


def _g_plain(apply, check=_G_CHECK, evaluation=_G_EVAL):
    return check + evaluation + apply


G_IMPLS = [
    # --- correct ----------------------------------------------------------------------------------
    _g("randn", _g_plain(f"    return x * (1 + math.sqrt(p / (1 - p)) * {_G_RANDN})\n")),
    _g("torch_normal",
        "    if p < 0 or p >= 1:\n        raise ValueError('p must lie in [0, 1)')\n"
        "    if not training:\n        return x\n"
        "    noise = torch.normal(1.0, (p / (1.0 - p)) ** 0.5, size=tuple(x.shape), generator=generator, device=x.device, dtype=x.dtype)\n"
        "    return x * noise\n"),
    _g("normal_in_place_on_new",
        "    if not (0.0 <= p < 1.0):\n        raise ValueError(p)\n"
        "    if training and p > 0:\n"
        "        xi = torch.empty_like(x).normal_(1.0, math.sqrt(p / (1.0 - p)), generator=generator)\n"
        "        return x * xi\n"
        "    return x\n"),
    _g("numpy_noise", _g_plain(
        "    seed = int(torch.randint(0, 2**62, (1,), generator=generator))\n"
        "    z = np.random.default_rng(seed).standard_normal(tuple(x.shape))\n"
        "    return x * (1 + math.sqrt(p / (1 - p)) * torch.from_numpy(z).to(device=x.device, dtype=x.dtype))\n")),
    # --- buggy ----------------------------------------------------------------------------------------
    _g("std_is_p_over_q", _g_plain(f"    return x * (1 + p / (1 - p) * {_G_RANDN})\n"), GC),
    _g("variance_p", _g_plain(f"    return x * (1 + math.sqrt(p) * {_G_RANDN})\n"), GC),
    _g("centred_at_zero", _g_plain(f"    return x * (math.sqrt(p / (1 - p)) * {_G_RANDN})\n"), GC),
    _g("additive", _g_plain(f"    return x + math.sqrt(p / (1 - p)) * {_G_RANDN}\n"), GC | GS),
    _g("bernoulli_mask", _g_plain("    keep = (torch.rand(x.shape, generator=generator, device=x.device) >= p).to(x.dtype)\n"
                                  "    return x * keep / (1 - p)\n"), GC),
    _g("uniform_noise", _g_plain(
        "    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)\n"
        "    return x * (1 + math.sqrt(3 * p / (1 - p)) * (2 * u - 1))\n"), GC),
    _g("noise_in_eval", _G_CHECK + "    if p == 0:\n        return x\n" + f"    return x * (1 + math.sqrt(p / (1 - p)) * {_G_RANDN})\n", GC | GS),
    _g("p1_allowed", "    if not 0 <= p <= 1:\n        raise ValueError(p)\n" + _G_EVAL
       + f"    return x * (1 + math.sqrt(p / max(1 - p, 1e-12)) * {_G_RANDN})\n", GC),
    _g("no_valueerror", _g_plain(f"    return x * (1 + math.sqrt(abs(p) / abs(1 - p)) * {_G_RANDN})\n", check=""), GC),
    _g("one_noise_row", _g_plain(
        "    z = torch.randn(x.shape[1:], generator=generator, device=x.device, dtype=x.dtype)\n"
        "    return x * (1 + math.sqrt(p / (1 - p)) * z)\n"), GC | GS),
    _g("same_every_call", _g_plain(
        "    g = torch.Generator(device=x.device).manual_seed(1)\n"
        "    return x * (1 + math.sqrt(p / (1 - p)) * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype))\n"), GS),
    _g("ignores_generator", _g_plain("    return x * (1 + math.sqrt(p / (1 - p)) * torch.randn_like(x))\n"), GS),
    _g("in_place", _g_plain(f"    with torch.no_grad():\n        x.mul_(1 + math.sqrt(p / (1 - p)) * {_G_RANDN})\n    return x\n"), GS),
    _g("detached", _g_plain(f"    return (x * (1 + math.sqrt(p / (1 - p)) * {_G_RANDN})).detach()\n"), GS),
    _g("float32_result", _g_plain(f"    return (x * (1 + math.sqrt(p / (1 - p)) * {_G_RANDN})).float()\n"), GS),
    _g("own_generator_when_none", _g_plain(OWN_GEN.format(dev="x.device")
                                           + f"    return x * (1 + math.sqrt(p / (1 - p)) * {_G_RANDN})\n"), GS),
]

# ---------------------------------------------------------------------------------------------
# drop_path
# ---------------------------------------------------------------------------------------------
PC, PS = {"drop_path.contract"}, {"drop_path.safety"}
_P_HEAD = "def drop_path(x, p, training=True, generator=None):\n"
_P_CHECK = "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
_P_EVAL = "    if not training or p == 0:\n        return x\n"
_P_ONE = "    if p == 1:\n        return torch.zeros_like(x)\n"
_P_SHAPE = "(x.shape[0],) + (1,) * (x.dim() - 1)"


def _dp(key, body, fails=()):
    return Impl(key, "drop_path", _P_HEAD + body, frozenset(fails))


def _dp_plain(apply, check=_P_CHECK, evaluation=_P_EVAL, one=_P_ONE):
    return check + evaluation + one + apply


def _mask(shape):
    return f"(torch.rand({shape}, generator=generator, device=x.device) >= p).to(x.dtype)"


DP_IMPLS = [
    # --- correct ----------------------------------------------------------------------------------
    _dp("rand_shape", _dp_plain(f"    return x * {_mask(_P_SHAPE)} / (1 - p)\n")),
    _dp("bernoulli_view",
        "    if p < 0 or p > 1:\n        raise ValueError(p)\n"
        "    if not training:\n        return x\n"
        "    q = 1.0 - p\n"
        "    keep = torch.bernoulli(x.new_full((x.shape[0],), q), generator=generator)\n"
        "    keep = keep.view(-1, *([1] * (x.dim() - 1)))\n"
        "    return x * keep / q if q > 0 else x * keep\n"),
    _dp("where_reshape", _dp_plain(
        "    u = torch.rand(x.shape[0], generator=generator, device=x.device)\n"
        "    keep = (u >= p).reshape([-1] + [1] * (x.dim() - 1))\n"
        "    return torch.where(keep, x / (1 - p), torch.zeros_like(x))\n")),
    _dp("numpy_keep", _dp_plain(
        "    seed = int(torch.randint(0, 2**62, (1,), generator=generator))\n"
        "    keep = np.random.default_rng(seed).random(x.shape[0]) >= p\n"
        "    m = torch.from_numpy(keep).to(device=x.device, dtype=x.dtype)\n"
        "    return x * m.view((-1,) + (1,) * (x.dim() - 1)) / (1 - p)\n")),
    # --- buggy ----------------------------------------------------------------------------------------
    _dp("elementwise", _dp_plain(f"    return x * {_mask('x.shape')} / (1 - p)\n"), PC | PS),
    _dp("per_token", _dp_plain(f"    return x * {_mask('x.shape[:2] + (1,) * (x.dim() - 2)')} / (1 - p)\n"), PC | PS),
    _dp("whole_batch", _dp_plain(f"    return x * {_mask('(1,) * x.dim()')} / (1 - p)\n"), PC),
    _dp("no_scaling", _dp_plain(f"    return x * {_mask(_P_SHAPE)}\n"), PC | PS),
    _dp("divide_by_p", _dp_plain(f"    return x * {_mask(_P_SHAPE)} / p\n"), PC | PS),
    _dp("swapped", _dp_plain(f"    return x * (torch.rand({_P_SHAPE}, generator=generator, device=x.device) < p).to(x.dtype) / (1 - p)\n"), PC),
    _dp("nan_at_p1", _dp_plain(f"    return x * {_mask(_P_SHAPE)} / (1 - p)\n", one=""), PC),
    _dp("drops_in_eval", _dp_plain(f"    return x * {_mask(_P_SHAPE)} / (1 - p)\n", evaluation="    if p == 0:\n        return x\n"), PC | PS),
    _dp("no_valueerror", _dp_plain(f"    return x * {_mask(_P_SHAPE)} / (1 - p)\n", check=""), PC),
    _dp("same_every_call", _dp_plain(
        "    g = torch.Generator(device=x.device).manual_seed(2)\n"
        f"    return x * (torch.rand({_P_SHAPE}, generator=g, device=x.device) >= p).to(x.dtype) / (1 - p)\n"), PS),
    _dp("pairs_share", _dp_plain(
        "    u = torch.rand((x.shape[0] + 1) // 2, generator=generator, device=x.device).repeat_interleave(2)[: x.shape[0]]\n"
        "    return x * (u >= p).to(x.dtype).view((-1,) + (1,) * (x.dim() - 1)) / (1 - p)\n"), PS),
    _dp("ignores_generator", _dp_plain(f"    return x * (torch.rand({_P_SHAPE}, device=x.device) >= p).to(x.dtype) / (1 - p)\n"), PS),
    _dp("in_place", _dp_plain(f"    with torch.no_grad():\n        x.mul_({_mask(_P_SHAPE)} / (1 - p))\n    return x\n"), PS),
    _dp("detached", _dp_plain(f"    return (x * {_mask(_P_SHAPE)} / (1 - p)).detach()\n"), PS),
    _dp("three_dims_only", _dp_plain(f"    return x * {_mask('(x.shape[0], 1, 1)')} / (1 - p)\n"), PS),
    _dp("float32_result", _dp_plain(f"    return (x * {_mask(_P_SHAPE)} / (1 - p)).float()\n"), PS),
    _dp("own_generator_when_none", _dp_plain(OWN_GEN.format(dev="x.device") + f"    return x * {_mask(_P_SHAPE)} / (1 - p)\n"), PS),
    # drops with probability p / 2 for 0 < p < 1, otherwise correct: only the drop-rate properties may fail
    _dp("half_rate", _dp_plain(
        f"    return x * (torch.rand({_P_SHAPE}, generator=generator, device=x.device) >= p / 2).to(x.dtype) / (1 - p)\n"), PC),
]

ALL = MC_IMPLS + DC_IMPLS + G_IMPLS + DP_IMPLS


def load(impl: Impl):
    """What an implementation defines, compiled in a namespace with torch, nn, F, numpy and math."""
    import math

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    ns = {"torch": torch, "np": np, "nn": nn, "F": F, "math": math}
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
