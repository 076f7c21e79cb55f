"""Checks for assignment 07_beyond: ``mc_dropout_predict``, ``dropconnect_linear``, ``gaussian_dropout``,
``drop_path`` and the chapter's practice questions.

p is the DROP probability and q = 1 - p the keep probability throughout.

Contract clause -> check.property that exercises it
---------------------------------------------------

``mc_dropout_predict(model, x, n_samples)``:

- returns ``(mean, std)``, two tensors shaped like one output of ``model(x)``
  -> ``mc_dropout_predict.contract.returns (mean, std)``
- calls ``model(x)`` exactly ``n_samples`` times -> ``contract.n_samples forward passes``, and in ``more`` the same
  property for each model (names there end in `` (nested layers, mixed modes)`` or `` (SELU and AlphaDropout, float64)``)
- dropout layers in training mode in every pass (every module that is an instance of a class in
  ``torch.nn.modules.dropout``: Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout; nested ones
  included) -> ``contract.dropout active in every pass``, ``more.dropout active in every pass (...)`` for a model with
  dropout nested in sub-modules and for a SELU model with ``nn.AlphaDropout``
- every other module, batch norm included, in evaluation mode during the passes
  -> ``contract.batch norm in eval mode during the passes``, ``more.batch norm in eval mode during the passes (...)``
- the passes are stochastic (not one repeated mask) -> ``contract.passes differ``
- mean and standard deviation over the passes, biased or unbiased -> ``contract.mean of the passes``,
  ``contract.std of the passes``, and the same in ``more`` (an odd n_samples, float64)
- no gradients tracked -> ``contract.no gradients tracked``
- every module left in the mode it was in -> ``contract.every module back in its mode`` (all in train
  mode before), ``more.every module back in its mode`` (mixed modes, all in eval mode)
- the model's parameters and buffers (batch-norm statistics) unchanged -> ``contract.model unchanged``, ``more.model unchanged (...)``
- x unchanged -> ``more.input unchanged (...)``
- dtype and device of the model's output -> ``contract.dtype``, ``contract.device``, ``more.float64 preserved``
- ValueError for n_samples < 2 -> ``contract.ValueError for n_samples < 2``

How the passes are seen without trusting the student's code: the trusted scenario :func:`mc_scenario`
builds the model, registers hooks on the model and on every dropout and batch-norm module, and records,
for every call of the model, its output, ``torch.is_grad_enabled()`` and each module's ``training`` flag at
that moment. The verdict compares the returned mean and std with the recorded passes, so no statistics are
needed: a correct answer is exact up to float rounding. A correct implementation produces two identical
passes only if two independent dropout masks over the 64 x 32 hidden units agree everywhere, probability
below (0.3^2 + 0.7^2)^2048 < 1e-500.

``dropconnect_linear(x, weight, bias, p, training=True, generator=None)``:

- training: one fresh 0/1 mask M of weight's shape, entries dropped with probability p, shared by every row
  of x; output ``x @ (M * weight / q).T + bias`` -> ``contract.kept weights are W / q at p=..``,
  ``contract.drop rate at p=..`` (binomial), ``contract.one mask for every row of x at p=..``
- bias added unmasked and unscaled -> ``contract.bias not masked at p=..``
- evaluation (``training=False``): the plain ``x @ weight.T + bias`` -> ``contract.evaluation is the plain linear layer``
- p = 0 is the plain linear layer; p = 1 gives the bias alone (zeros when bias is None), never NaN
  -> ``contract.p=0 is the plain linear layer``, ``contract.p=1 gives the bias``
- ValueError for p outside [0, 1], also at evaluation -> ``contract.ValueError outside [0, 1]``
- dtype and device of x -> ``contract.dtype``, ``contract.device``, ``safety.float64 preserved``
- mask entries independent (one coin per weight) -> ``safety.weights into one unit independent at p=..``,
  ``safety.weights from one input independent at p=..`` (at p = 0.3 and 0.8)
- a fresh mask on every call; random numbers from ``generator`` -> ``safety.fresh mask each call``,
  ``safety.generator honoured``, ``safety.generator seed matters``; otherwise from PyTorch's global random state
  -> ``safety.global random state without a generator`` (two calls right after the same ``torch.manual_seed``)
- x, weight and bias not modified -> ``safety.inputs unchanged``
- gradients flow to x, weight and bias, in training and evaluation -> ``safety.gradients in training``,
  ``safety.gradients at evaluation``
- bias may be None; x may have leading dimensions (..., in_features) -> ``safety.bias=None``,
  ``safety.leading dimensions``; at p = 1 with bias None, zeros -> ``safety.bias=None at p=1 gives zeros``

The grader sees the mask exactly: x holds the identity matrix twice and a zero row, so the output's rows
are the masked weight's columns plus the bias, and the zero row is the bias the function added.

``gaussian_dropout(x, p, training=True, generator=None)``:

- training: ``x * xi`` with xi ~ N(1, p / (1 - p)) drawn independently per entry -> ``contract.noise mean 1 at p=..``,
  ``contract.noise variance p/(1-p) at p=..``, ``contract.Gaussian noise at p=..`` (at p = 0.1, 0.3, 0.8)
- multiplicative: the same noise distribution whatever |x| -> ``safety.multiplicative noise``
- evaluation returns x; p = 0 returns x -> ``contract.evaluation returns x``, ``contract.p=0 returns x``
- ValueError for p outside [0, 1) (p = 1 included: the variance would be infinite), also at evaluation
  -> ``contract.ValueError outside [0, 1)``
- dtype and device -> ``contract.dtype``, ``contract.device``, ``safety.float64 preserved``
- independent across entries and calls, the generator honoured -> ``safety.fresh noise each call``,
  ``safety.rows independent``, ``safety.columns independent``, ``safety.generator honoured``,
  ``safety.generator seed matters``; otherwise PyTorch's global random state -> ``safety.global random state without
  a generator``
- x not modified; gradient ``xi * upstream`` (training) and ``upstream`` (evaluation)
  -> ``safety.input unchanged``, ``safety.gradient is noise * upstream``, ``safety.gradient at evaluation is upstream``

``drop_path(x, p, training=True, generator=None)``:

- training: one keep/drop draw per sample (dim 0), shared over every other dimension; survivors x / q
  -> ``contract.one draw per sample at p=..``, ``contract.kept samples are x / q at p=..``, ``contract.drop rate at p=..``
- evaluation returns x; p = 0 returns x; p = 1 returns zeros, never NaN -> ``contract.evaluation returns x``,
  ``contract.p=0 returns x``, ``contract.p=1 gives zeros``
- ValueError for p outside [0, 1], also at evaluation -> ``contract.ValueError outside [0, 1]``
- dtype and device; any number of dimensions -> ``contract.dtype``, ``contract.device``, ``safety.float64 preserved``,
  ``safety.one draw per sample for 2-D and 4-D x``
- samples independent, fresh each call, generator -> ``safety.samples independent at p=..``, ``safety.fresh mask each call``,
  ``safety.generator honoured``, ``safety.generator seed matters``; otherwise PyTorch's global random state
  -> ``safety.global random state without a generator``
- x not modified; gradient ``m / q * upstream`` and ``upstream`` -> ``safety.input unchanged``,
  ``safety.gradient in training is mask / q * upstream``, ``safety.gradient at evaluation is upstream``

The practice questions are ``answer_q1`` ... ``answer_q5`` (checks ``answer_qN.beyond``).

Statistics
----------

Every statistical test has a false-failure probability of at most ``stats.ALPHA_PER_TEST`` = 1e-7 and
counts against the check's budget of ten (:data:`autograde.stats.MAX_STAT_TESTS_PER_CHECK`), so a correct
answer fails a check by chance with probability at most 1e-6.

- Drop rates and the Gaussian shape are binomial counts (``Judge.binomial``).
- *Independence and freshness* are judged against the masks' **observed** drop rates, exactly
  (``properties.independent``): given the two masks' counts, the overlap of independent masks with exchangeable
  entries is hypergeometric whatever the rate, and the acceptance interval cuts 5e-8 from each tail of that law.
  So the false-failure probability is at most 1e-7 per test, and a submission whose only mistake is its rate
  keeps these properties and loses only the drop-rate property (``tests/test_observed_rates.py``).
- *Multiplicative noise* is exact the same way: if the noise values are i.i.d. and do not depend on x, the
  number of entries with small |x| whose noise lies below the overall median of |xi - 1| is hypergeometric;
  the interval cuts 5e-8 from each tail.
- Reproducibility (``generator honoured``, ``global random state without a generator``) and the
  mc_dropout_predict properties are exact comparisons, not statistical tests.
- *Gaussian noise mean and variance* are exact tests under the contract's noise: for n independent
  N(1, s2) values, (mean - 1) / sqrt(s2 / n) is standard normal, so |z| <= z_(1 - 1e-7 / 2) = 5.33 fails
  with probability 1e-7; and (n - 1) S^2 / s2 (S^2 the unbiased sample variance) is chi-square with n - 1
  degrees of freedom, accepted between its 5e-8 and 1 - 5e-8 quantiles. The noise is read back as
  out / x from float32 values, a relative rounding of at most 6e-8 per value, far below either test's
  resolution. Both count against the budget like binomial tests.
"""

from __future__ import annotations

import numpy as np
from statistics import NormalDist  # the normal quantiles below without importing SciPy at module level

from .. import stats
from ..probe import generator, scenario, tensor
from . import Check
from . import properties as prop

RATES = (0.1, 0.3, 0.8)  # asymmetric: at 0.5 a swapped keep/drop probability would be invisible
RTOL = 1e-5


# ---------------------------------------------------------------------------------------------
# shared helpers: every array and fact a verdict reads goes through ``properties``' defensive readers,
# so a malformed record fails the property that needed it, with a message, and never raises
# ---------------------------------------------------------------------------------------------
def _out(j, name, cid, shape=None, dtype=None, key="out", what="the output") -> np.ndarray | None:
    """``prop.tensor_out``, with integer or bool outputs turned into float64 so the arithmetic below never
    raises on them (their wrong dtype is reported by the dtype property)."""
    arr = prop.tensor_out(j, name, cid, shape, dtype, key=key, what=what)
    return arr if arr is None or arr.dtype.kind == "f" else arr.astype(np.float64)


def _x_shaped_first(j) -> np.ndarray | None:
    """The opening of the elementwise contracts (Gaussian dropout, DropPath): the first training output is a
    tensor of x's shape, float32, on the plan's device; else those properties fail and None."""
    x = j.input_array("x")
    first = _out(j, "returns a tensor", f"t{RATES[1]}")
    if first is None:
        return None
    j.ok("returns a tensor")
    if not j.expect("shape", first.shape == x.shape, f"expected the shape of x, {x.shape}, got {first.shape}"):
        return None
    prop.dtype_device(j, f"t{RATES[1]}", "torch.float32", j.plan.device)
    prop.cuda_note(j)
    return first


def _raises(j, name, cases, what="p") -> None:
    """``cases``: (call id, description of the bad argument)."""
    missing = [(cid, desc) for cid, desc in cases if not j.raised(cid, "ValueError")]
    if not missing:
        j.ok(name)
        return
    seen = [f"{desc}: {prop.raised_what(j, cid)}" for cid, desc in missing]
    j.fail(name, f"expected ValueError for an invalid {what}; saw " + "; ".join(seen))


def _backward_failed(j, cid) -> str | None:
    """The message of a failed backward pass of call ``cid``, if the record reports one."""
    err = j.record(cid).get("backward_error")
    if err is None:
        return None
    message = err.get("exc_message") if isinstance(err, dict) else None
    return message if isinstance(message, str) else "an error"


def _gradient(j, cid, index, expected, what, hint) -> None:
    why = j.problem(cid)
    if why:
        j.fail(what, why)
        return
    failed = _backward_failed(j, cid)
    if failed is not None:
        j.fail(what, f"backward failed: {failed} (is the output detached, or built with numpy?)")
        return
    grad = j.array(cid, f"grad/{index}")
    if grad is None:
        j.fail(what, "an input received no gradient: keep the computation in torch so autograd can follow it "
                     "(no .detach(), .numpy() or torch.no_grad())")
        return
    if grad.shape != expected.shape or grad.dtype.kind != "f":
        j.fail(what, f"the gradient came back as {grad.dtype} of shape {grad.shape}, expected floats of shape {expected.shape}")
        return
    # float32 sums of a few hundred products: allow an absolute error relative to the gradient's size
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    j.expect(what, bool(np.allclose(grad, expected, rtol=1e-4, atol=1e-5 * scale)), hint)


def _float64(j, cid, shape) -> np.ndarray | None:
    """The output of ``cid`` if it is a float64 array of ``shape``; else a failure of "float64 preserved"."""
    out = prop.tensor_out(j, "float64 preserved", cid, shape)
    if out is None:
        return None
    dtype = prop.out_dtype(j, cid)
    if dtype != "torch.float64":
        j.fail("float64 preserved", f"a float64 input must give a float64 output; got {dtype} (is the mask or the noise "
                                    "made as float32 and the product cast?)")
        return None
    return out


def _generator(j, ids, to_mask, mistake_ignored, shape) -> None:
    g1, g2, g3 = (_out(j, "generator honoured", cid, shape) for cid in ids)
    if g1 is None or g2 is None or g3 is None:
        return
    if j.expect("generator honoured", np.array_equal(g1, g2),
                "two calls with generators seeded alike gave different results: draw from the generator argument "
                "(torch.rand(..., generator=generator)) instead of the global random state"):
        prop.independent(j, "generator seed matters", to_mask(g1), to_mask(g3), 0.3, "draws from differently seeded generators",
                    mistake_ignored)


def _global_seed(j, shape) -> None:
    """Without a generator, two calls right after the same torch.manual_seed give the same result."""
    prop.judge_global_seed(j, ("s1", "s2"), shape, to_mask=lambda a: a)


def _scaled_kept(j, name, got, want, p, what) -> None:
    """Kept values ``got`` must equal ``want / q``; name the usual wrong factors."""
    q = 1 - p
    if got.size and np.allclose(got, want / q, rtol=RTOL, atol=1e-6):
        j.ok(name)
    elif got.size and np.allclose(got, want, rtol=RTOL, atol=1e-6):
        j.fail(name, f"kept {what} equal the originals: the inverted scaling is missing; divide the survivors by q = 1 - p = {q:.1f}")
    elif got.size and np.allclose(got, want * q, rtol=RTOL, atol=1e-6):
        j.fail(name, f"kept {what} equal the originals times q: divide by q = 1 - p = {q:.1f}, do not multiply")
    elif got.size and np.allclose(got, want / p, rtol=RTOL, atol=1e-6):
        j.fail(name, f"kept {what} equal the originals / p: divide by the keep probability q = 1 - p = {q:.1f}, not by p")
    else:
        j.fail(name, f"kept {what} must equal the originals / (1 - p) = / {q:.1f}")


# ---------------------------------------------------------------------------------------------
# mc_dropout_predict
# ---------------------------------------------------------------------------------------------
MC_IN, MC_HIDDEN, MC_OUT, MC_BATCH = 5, 32, 3, 64


def _build_model(kind, params, dtype, device):
    """The trusted test models. ``params`` are the plan's weights, in the order the layers use them."""
    import torch
    from torch import nn

    it = iter(params)

    def linear(n_in, n_out):
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.copy_(next(it))
            lin.bias.copy_(next(it))
        return lin

    def batchnorm(n):
        bn = nn.BatchNorm1d(n)
        with torch.no_grad():
            bn.weight.copy_(next(it))
            bn.bias.copy_(next(it))
            bn.running_mean.copy_(next(it))
            bn.running_var.copy_(next(it))
        bn.num_batches_tracked.fill_(100)
        return bn

    if kind == "bn":
        model = nn.Sequential(linear(MC_IN, MC_HIDDEN), batchnorm(MC_HIDDEN), nn.ReLU(), nn.Dropout(0.3),
                              linear(MC_HIDDEN, MC_OUT))
    elif kind == "nested":
        model = nn.Sequential(
            nn.Sequential(linear(MC_IN, MC_HIDDEN), batchnorm(MC_HIDDEN), nn.ReLU(), nn.Dropout(0.2)),
            nn.Sequential(linear(MC_HIDDEN, MC_HIDDEN), nn.ReLU(), nn.Dropout(0.4)),
            linear(MC_HIDDEN, MC_OUT),
        )
    elif kind == "selu":
        model = nn.Sequential(linear(MC_IN, MC_HIDDEN), nn.SELU(), nn.AlphaDropout(0.2),
                              linear(MC_HIDDEN, MC_HIDDEN), nn.SELU(), nn.AlphaDropout(0.2), linear(MC_HIDDEN, MC_OUT))
    else:
        raise ValueError(kind)
    return model.to(device=device, dtype=getattr(torch, dtype))


@scenario("passes", "mean", "std")
def mc_scenario(fn, params, x, n_samples, kind="bn", modes="train", dtype="float32"):
    """Trusted: build a model, set its modes (``"train"``, ``"eval"`` or ``"mixed"``), hook it, call
    ``fn(model, x, n_samples)``, and record every pass the model made and what came back."""
    import torch
    from torch import nn
    from torch.nn.modules.dropout import _DropoutNd

    model = _build_model(kind, params, dtype, x.device)
    x = x.to(getattr(torch, dtype))
    names = [name or "(the model)" for name, _ in model.named_modules()]
    modules = [m for _, m in model.named_modules()]
    if modes == "train":
        model.train()
    elif modes == "eval":
        model.eval()
    else:  # mixed: batch norm and the outer container in training mode, dropout and the rest in eval mode
        model.eval()
        model.training = True
        for m in modules:
            if isinstance(m, nn.BatchNorm1d):
                m.train()
    before = [bool(m.training) for m in modules]
    state_before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x_before = x.detach().clone()
    drop_ids = [i for i, m in enumerate(modules) if isinstance(m, _DropoutNd)]
    bn_ids = [i for i, m in enumerate(modules) if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    calls: list[dict] = []
    outside: list[int] = []

    def model_pre(mod, args):
        calls.append({"grad": bool(torch.is_grad_enabled()), "drop": [], "bn": []})

    def model_post(mod, args, out):
        if calls and isinstance(out, torch.Tensor):
            calls[-1]["out"] = out.detach().clone()

    def flag(kind_, i):
        def hook(mod, args):
            if calls:
                calls[-1][kind_].append(bool(mod.training))
            else:
                outside.append(i)
        return hook

    hooks = [model.register_forward_pre_hook(model_pre), model.register_forward_hook(model_post)]
    hooks += [modules[i].register_forward_pre_hook(flag("drop", i)) for i in drop_ids]
    hooks += [modules[i].register_forward_pre_hook(flag("bn", i)) for i in bn_ids]
    try:
        result = fn(model, x, n_samples)
    finally:
        for h in hooks:
            h.remove()
    facts: dict = {
        "names": names,
        "before": before,
        "after": [bool(m.training) for m in modules],
        "n_calls": len(calls),
        "outside_calls": len(outside),
        "grad_enabled": [c["grad"] for c in calls],
        "dropout_flags": [c["drop"] for c in calls],
        "bn_flags": [c["bn"] for c in calls],
        "drop_names": [names[i] for i in drop_ids],
        "state_unchanged": all(torch.equal(v, state_before[k]) for k, v in model.state_dict().items()),
        "changed_state": [k for k, v in model.state_dict().items() if not torch.equal(v, state_before[k])][:5],
        "x_unchanged": bool(torch.equal(x.detach(), x_before)),
    }
    outs = [c["out"] for c in calls if "out" in c]
    if outs and len(outs) == len(calls) and all(o.shape == outs[0].shape for o in outs):
        facts["passes"] = torch.stack(outs)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        facts["returned"] = type(result).__name__ + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        return facts
    for key, value in zip(("mean", "std"), result):
        if not isinstance(value, torch.Tensor):
            facts[f"{key}_type"] = type(value).__name__
            continue
        facts[key] = value.detach()
        facts[f"{key}_dtype"] = str(value.dtype)
        facts[f"{key}_device"] = value.device.type
        facts[f"{key}_requires_grad"] = bool(value.requires_grad)
    return facts


def _mc_params(plan, rng, kind, prefix):
    """Weights for the test model ``kind``, stored as plan inputs; returns their tensor encodings in layer order."""
    enc = []

    def add(name, array):
        plan.inputs[f"{prefix}_{name}"] = array.astype(np.float32)
        enc.append(tensor(f"{prefix}_{name}"))

    def linear(k, n_in, n_out):
        add(f"W{k}", rng.normal(size=(n_out, n_in)) / np.sqrt(n_in))
        add(f"b{k}", rng.normal(size=n_out) * 0.1)

    def batchnorm(k, n):
        add(f"g{k}", rng.uniform(0.5, 1.5, size=n))
        add(f"beta{k}", rng.normal(size=n) * 0.1)
        add(f"rm{k}", rng.normal(size=n) * 2.0)  # far from any batch's statistics: batch statistics show
        add(f"rv{k}", rng.uniform(3.0, 6.0, size=n))

    if kind == "bn":
        linear(0, MC_IN, MC_HIDDEN), batchnorm(0, MC_HIDDEN), linear(1, MC_HIDDEN, MC_OUT)
    elif kind == "nested":
        linear(0, MC_IN, MC_HIDDEN), batchnorm(0, MC_HIDDEN), linear(1, MC_HIDDEN, MC_HIDDEN), linear(2, MC_HIDDEN, MC_OUT)
    else:
        linear(0, MC_IN, MC_HIDDEN), linear(1, MC_HIDDEN, MC_HIDDEN), linear(2, MC_HIDDEN, MC_OUT)
    return enc


SC_MC = "autograde.checks.beyond:mc_scenario"


def _mc_contract_plan(plan, rng):
    plan.inputs["x"] = rng.normal(size=(MC_BATCH, MC_IN)).astype(np.float32)
    params = _mc_params(plan, rng, "bn", "bn")
    plan.call("main", params, tensor("x"), 20, kind="bn", modes="train", scenario=SC_MC)
    plan.call("n1", params, tensor("x"), 1, kind="bn", modes="train", scenario=SC_MC)
    plan.call("n0", params, tensor("x"), 0, kind="bn", modes="train", scenario=SC_MC)


def _unreadable(what: str, key: str) -> str:
    return (f"the grader got no usable record of {what} (the scenario's '{key}' is missing or malformed), so this "
            "property cannot be judged: did the call finish normally?")


def _list_of(value, kind):
    """``value`` if it is a list whose items are all ``kind`` (bool, str or a list of bools), else None."""
    if not isinstance(value, list):
        return None
    if kind == "flags":
        ok = all(isinstance(c, list) and all(isinstance(f, bool) for f in c) for c in value)
    else:
        ok = all(isinstance(v, kind) for v in value)
    return value if ok else None


def _mc_array(j, cid, key, shape):
    """A float array of the scenario's ``key`` with ``shape``, else None."""
    arr = j.array(cid, key)
    if arr is None or tuple(arr.shape) != tuple(shape) or arr.dtype.kind not in "biuf":
        return None
    return arr.astype(np.float64)


def _mc_usable(j, cid, name) -> bool:
    why = j.problem(cid)
    if why:
        j.fail(name, why)
        return False
    returned = prop.fact(j, cid, "returned", str)
    if returned:
        j.fail(name, f"mc_dropout_predict returned a {returned}; return a tuple (mean, std) of two tensors")
        return False
    for key in ("mean", "std"):
        kind = prop.fact(j, cid, f"{key}_type", str)
        if kind:
            j.fail(name, f"the {key} returned is a {kind}, expected a torch.Tensor")
            return False
        if j.array(cid, key) is None:
            j.fail(name, f"the {key} did not come back from mc_dropout_predict (expected a tuple (mean, std) of two tensors)")
            return False
    return True


def _judge_passes(j, cid, n, tag="") -> None:
    """Every property of one mc_dropout_predict call, names suffixed with ``tag``."""
    name = "n_samples forward passes" + tag
    calls = prop.fact(j, cid, "n_calls", int)
    outside = prop.fact(j, cid, "outside_calls", int, 0)
    if calls is None or calls < 0:
        j.fail(name, _unreadable("how often model(x) was called", "n_calls"))
    elif calls == n:
        j.ok(name)
    elif calls == 0 and outside:
        j.fail(name, "model(x) was never called, but its layers were: call model(x) itself "
                     f"{n} times (the grader watches the model's forward calls)")
    else:
        j.fail(name, f"model(x) was called {calls} times for n_samples = {n}: make exactly "
                     "n_samples stochastic passes (no extra pass to find the output's shape)")
    name = "dropout active in every pass" + tag
    drop_flags = _list_of(prop.fact(j, cid, "dropout_flags", list), "flags")
    drop_names = _list_of(prop.fact(j, cid, "drop_names", list), str)
    if drop_flags is None or drop_names is None:
        j.fail(name, _unreadable("the dropout layers' modes during the passes", "dropout_flags"))
    elif drop_flags:
        off = sum(1 for c in drop_flags for f in c if not f)
        skipped = sum(1 for c in drop_flags if len(c) != len(drop_names))
        if not off and not skipped:
            j.ok(name)
        elif not off:
            j.fail(name, f"in {skipped} of the passes not every dropout layer ran: call model(x) itself, so every layer "
                         "runs in every pass")
        else:
            kinds = "nested " if any("." in nm for nm in drop_names) else ""
            j.fail(name,
                   f"dropout layers were in evaluation mode in {off} of the layer calls during the passes, so those passes "
                   "are not stochastic (with every dropout layer in eval mode that is weight scaling, not MC dropout): put "
                   f"every {kinds}dropout module in training mode; iterate over model.modules() (not model.children()) and "
                   "test isinstance against nn.Dropout and nn.AlphaDropout alike (their common base class is "
                   "torch.nn.modules.dropout._DropoutNd)")
    name = "batch norm in eval mode during the passes" + tag
    bn_flags = _list_of(prop.fact(j, cid, "bn_flags", list), "flags")
    if bn_flags is None:
        j.fail(name, _unreadable("the batch-norm layers' modes during the passes", "bn_flags"))
    elif any(c for c in bn_flags):
        on = sum(1 for c in bn_flags for f in c if f)
        j.expect(name, on == 0,
                 f"batch norm ran in training mode in {on} of its calls during the passes: model.train() also switches "
                 "BatchNorm to the statistics of the current batch (and updates its running averages with your test "
                 "inputs); call model.eval(), then .train() on the dropout modules only")
    name = "no gradients tracked" + tag
    grads = _list_of(prop.fact(j, cid, "grad_enabled", list), bool)
    if grads is None:
        j.fail(name, _unreadable("whether gradients were tracked during the passes", "grad_enabled"))
    else:
        needs = [k for k in ("mean", "std") if prop.fact(j, cid, f"{k}_requires_grad", bool)]
        j.expect(name, not any(grads) and not needs,
                 "the passes ran with gradient tracking on" + (f" and the returned {' and '.join(needs)} require grad" if needs else "")
                 + ": run them under torch.no_grad() (or torch.inference_mode()), nothing here needs a gradient")
    name = "every module back in its mode" + tag
    before, after = _list_of(prop.fact(j, cid, "before", list), bool), _list_of(prop.fact(j, cid, "after", list), bool)
    names = _list_of(prop.fact(j, cid, "names", list), str)
    if before is None or after is None or names is None or not len(before) == len(after) == len(names):
        j.fail(name, _unreadable("every module's mode before and after the call", "before/after"))
    else:
        changed = [f"'{nm}' was in {'training' if b else 'eval'} mode, now {'training' if a else 'eval'}"
                   for nm, b, a in zip(names, before, after) if a != b]
        j.expect(name, not changed,
                 f"after the call {len(changed)} modules are in another mode than before ({'; '.join(changed[:3])}): record "
                 "every module's .training before switching and restore each one afterwards (model.train() or model.eval() "
                 "at the end cannot restore a model whose modules were in different modes)")
    if calls is None or calls < 2:
        return  # too few passes for a mean and a spread: reported by "n_samples forward passes"
    passes = _mc_array(j, cid, "passes", (calls, MC_BATCH, MC_OUT))
    if passes is None:
        for what in ("passes differ", "mean of the passes", "std of the passes"):
            j.fail(what + tag, _unreadable("the outputs of the passes", "passes"))
        return
    same = [k for k in range(1, len(passes)) if np.array_equal(passes[k], passes[0])]
    j.expect("passes differ" + tag, len(same) < len(passes) - 1,
             f"all {len(passes)} passes gave exactly the same output: the masks are not random across passes (is a seed "
             "set inside the loop, or the same generator state reused?)")
    want_mean = passes.mean(0)
    mean, std = _mc_array(j, cid, "mean", want_mean.shape), _mc_array(j, cid, "std", want_mean.shape)
    if mean is None:
        got = j.array(cid, "mean")
        j.fail("mean of the passes" + tag, f"the mean should hold numbers in the shape of one output, {want_mean.shape}; got "
                                           f"{'nothing' if got is None else f'{got.dtype} of shape {got.shape}'}")
    elif np.allclose(mean, want_mean, rtol=1e-4, atol=1e-5):
        j.ok("mean of the passes" + tag)
    elif std is not None and np.allclose(std, want_mean, rtol=1e-4, atol=1e-5):
        j.fail("mean of the passes" + tag, "the first value returned is not the mean but the second one is: return (mean, std) in that order")
    elif np.allclose(mean, passes[-1], rtol=1e-4, atol=1e-5) or np.allclose(mean, passes[0], rtol=1e-4, atol=1e-5):
        j.fail("mean of the passes" + tag, "the mean equals a single pass: average over all n_samples passes (stack them, then .mean(0))")
    else:
        j.fail("mean of the passes" + tag, "the mean does not match the average of the passes the model made")
    if std is None:
        got = j.array(cid, "std")
        j.fail("std of the passes" + tag, f"the std should hold numbers in the shape of one output, {want_mean.shape}; got "
                                          f"{'nothing' if got is None else f'{got.dtype} of shape {got.shape}'}")
        return
    sd0, sd1 = passes.std(0), passes.std(0, ddof=1)
    if np.allclose(std, sd0, rtol=1e-4, atol=1e-5) or np.allclose(std, sd1, rtol=1e-4, atol=1e-5):
        j.ok("std of the passes" + tag)
    elif np.allclose(std, sd0**2, rtol=1e-4, atol=1e-5) or np.allclose(std, sd1**2, rtol=1e-4, atol=1e-5):
        j.fail("std of the passes" + tag, "the second value is the variance of the passes: return the standard deviation, its square root")
    elif mean is not None and np.allclose(std, want_mean, rtol=1e-4, atol=1e-5):
        j.fail("std of the passes" + tag, "the second value is the mean: return (mean, std) in that order")
    elif np.allclose(std, sd1 / np.sqrt(len(passes)), rtol=1e-4, atol=1e-5):
        j.fail("std of the passes" + tag, "the second value is the standard error of the mean (std / sqrt(n)); return the "
                                          "standard deviation of the passes themselves")
    else:
        j.fail("std of the passes" + tag, "the std does not match the standard deviation of the passes the model made "
                                          "(biased or unbiased are both accepted)")


def _model_unchanged(j, cid, name, hint) -> None:
    unchanged = prop.fact(j, cid, "state_unchanged", bool)
    if unchanged is None:
        j.fail(name, _unreadable("the model's parameters and buffers after the call", "state_unchanged"))
        return
    changed = _list_of(prop.fact(j, cid, "changed_state", list), str) or ["?"]
    j.expect(name, unchanged, f"the model's parameters or buffers changed during the call ({', '.join(changed)}){hint}")


def _mc_contract_judge(j):
    if not _mc_usable(j, "main", "returns (mean, std)"):
        return
    j.ok("returns (mean, std)")
    _judge_passes(j, "main", 20)
    _model_unchanged(j, "main", "model unchanged",
                     ": predicting must not train the model or update batch-norm running statistics")
    dtypes = [prop.fact(j, "main", f"{k}_dtype", str) for k in ("mean", "std")]
    j.expect("dtype", dtypes == ["torch.float32"] * 2,
             f"the model outputs float32; mean and std should too, got {dtypes[0]} and {dtypes[1]}")
    device = j.plan.device.split(":")[0]
    devices = [prop.fact(j, "main", f"{k}_device", str) for k in ("mean", "std")]
    j.expect("device", devices == [device] * 2, f"expected mean and std on {device}, got {devices[0]} and {devices[1]}")
    prop.cuda_note(j)
    _raises(j, "ValueError for n_samples < 2", [("n1", "n_samples = 1"), ("n0", "n_samples = 0")], what="n_samples (a spread needs at least 2 passes)")


def _mc_more_plan(plan, rng):
    plan.inputs["x"] = rng.normal(size=(MC_BATCH, MC_IN)).astype(np.float32)
    nested = _mc_params(plan, rng, "nested", "nested")
    selu = _mc_params(plan, rng, "selu", "selu")
    plan.call("nested", nested, tensor("x"), 7, kind="nested", modes="mixed", scenario=SC_MC)
    plan.call("selu", selu, tensor("x"), 9, kind="selu", modes="eval", dtype="float64", scenario=SC_MC)


def _mc_more_judge(j):
    for cid, n, tag in (("nested", 7, " (nested layers, mixed modes)"), ("selu", 9, " (SELU and AlphaDropout, float64)")):
        if not _mc_usable(j, cid, "returns (mean, std)" + tag):
            continue
        j.ok("returns (mean, std)" + tag)
        _judge_passes(j, cid, n, tag)
        unchanged = prop.fact(j, cid, "x_unchanged", bool)
        j.expect("input unchanged" + tag, bool(unchanged), "x was modified: never change the input in place" if unchanged is not None
                 else _unreadable("x after the call", "x_unchanged"))
        _model_unchanged(j, cid, "model unchanged" + tag, "")
    if j.problem("selu") is None and j.array("selu", "mean") is not None:
        dtypes = [prop.fact(j, "selu", f"{k}_dtype", str) for k in ("mean", "std")]
        j.expect("float64 preserved", dtypes == ["torch.float64"] * 2,
                 f"a float64 model gives float64 outputs; mean and std should stay float64, got {dtypes[0]} and {dtypes[1]}")


# ---------------------------------------------------------------------------------------------
# dropconnect_linear
# ---------------------------------------------------------------------------------------------
DC_IN, DC_OUT = 200, 300  # 60,000 weights: a drop-rate interval of about +-1 point at p = 0.3


def _dc_weights(plan, rng, n_in=DC_IN, n_out=DC_OUT, prefix=""):
    plan.inputs[prefix + "W"] = prop.nonzero_input(rng, (n_out, n_in))
    plan.inputs[prefix + "b"] = (rng.uniform(0.1, 0.5, size=n_out) * rng.choice([-1.0, 1.0], size=n_out)).astype(np.float32)


def _eye_input(n_in, copies=2) -> np.ndarray:
    """``copies`` identity matrices stacked, then a zero row: out rows are the masked weight's columns plus the
    bias, and the last row is the bias alone."""
    return np.concatenate([np.eye(n_in)] * copies + [np.zeros((1, n_in))]).astype(np.float32)


def _masked_weight(out: np.ndarray, n_in: int, block: int = 0) -> np.ndarray:
    """The masked and scaled weight (out, in) the function used for identity block ``block``."""
    bias_used = out[-1]
    return (out[block * n_in:(block + 1) * n_in] - bias_used).T


def _dc_contract_plan(plan, rng):
    _dc_weights(plan, rng)
    plan.inputs["eye"] = _eye_input(DC_IN)
    plan.inputs["xr"] = rng.normal(size=(40, DC_IN)).astype(np.float32)
    args = (tensor("W"), tensor("b"))
    for p in RATES:
        plan.call(f"t{p}", tensor("eye"), *args, p)
    plan.call("e0.3", tensor("xr"), *args, 0.3, training=False)
    plan.call("t0", tensor("xr"), *args, 0.0)
    plan.call("t1", tensor("eye"), *args, 1.0)
    plan.call("neg", tensor("xr"), *args, -0.1)
    plan.call("big", tensor("xr"), *args, 1.2)
    plan.call("neg_eval", tensor("xr"), *args, -0.1, training=False)


def _linear_ref(j, xname, with_bias=True):
    x = j.input_array(xname).astype(np.float64)
    w, b = j.input_array("W").astype(np.float64), j.input_array("b").astype(np.float64)
    return x @ w.T + (b if with_bias else 0.0)


def _judge_bias(j, name, out, b, p) -> None:
    used = out[-1]
    if np.allclose(used, b, rtol=1e-6, atol=1e-7):
        j.ok(name)
    elif ((used == 0) & (b != 0)).any():
        j.fail(name, f"some bias entries were dropped (the output for a zero input row has {int(((used == 0) & (b != 0)).sum())} "
                     "zeros where the bias is not 0): DropConnect masks the weights only; add the bias unmasked")
    elif np.allclose(used, b / (1 - p), rtol=1e-5):
        j.fail(name, "the bias was divided by q: only the masked weights are rescaled; add the bias unchanged")
    else:
        j.fail(name, "for a zero input row the output must be exactly the bias: add the bias unmasked and unscaled")


def _dc_contract_judge(j):
    W, b = j.input_array("W"), j.input_array("b")
    first = _out(j, "returns a tensor", f"t{RATES[1]}")
    if first is None:
        return
    j.ok("returns a tensor")
    want_shape = (2 * DC_IN + 1, DC_OUT)
    if not j.expect("shape", first.shape == want_shape, f"for x of shape {(2 * DC_IN + 1, DC_IN)} and weight {W.shape} "
                                                        f"the output must have shape {want_shape}, got {first.shape}"):
        return
    prop.dtype_device(j, f"t{RATES[1]}", "torch.float32", j.plan.device)
    prop.cuda_note(j)
    for p in RATES:
        out = _out(j, f"drop rate at p={p}", f"t{p}", want_shape)
        if out is None:
            continue
        _judge_bias(j, f"bias not masked at p={p}", out, b, p)
        wt = _masked_weight(out, DC_IN)
        dropped = wt == 0
        _scaled_kept(j, f"kept weights are W / q at p={p}", wt[~dropped], W[~dropped], p, "weights")
        prop.drop_rate(j, f"drop rate at p={p}", dropped, p)
        second = _masked_weight(out, DC_IN, 1)
        if np.array_equal(second == 0, dropped):
            j.ok(f"one mask for every row of x at p={p}")
        else:
            j.fail(f"one mask for every row of x at p={p}",
                   f"two equal rows of x were multiplied by different masks ({prop.pct(float(((second == 0) != dropped).mean()))} "
                   "of the weights differ): draw ONE mask of weight's shape per call and use it for the whole batch "
                   "(F.linear(x, weight * mask / q, bias)), not a mask per example")
    ev = _out(j, "evaluation is the plain linear layer", "e0.3", (len(j.input_array("xr")), DC_OUT))
    if ev is not None:
        want = _linear_ref(j, "xr")
        if ev.shape == want.shape and np.allclose(ev, want, rtol=1e-4, atol=1e-4):
            j.ok("evaluation is the plain linear layer")
        elif ev.shape == want.shape and np.allclose(ev, j.input_array("xr").astype(np.float64) @ (0.7 * W.astype(np.float64)).T + b,
                                                    rtol=1e-4, atol=1e-4):
            j.fail("evaluation is the plain linear layer", "with training=False the weights were multiplied by q: that is "
                   "classic dropout's rule; with inverted scaling in training, evaluation uses weight unchanged")
        else:
            j.fail("evaluation is the plain linear layer", "with training=False the output must be x @ weight.T + bias "
                   "(no mask; is training honoured?)")
    t0 = _out(j, "p=0 is the plain linear layer", "t0", (len(j.input_array("xr")), DC_OUT))
    if t0 is not None:
        want = _linear_ref(j, "xr")
        j.expect("p=0 is the plain linear layer", t0.shape == want.shape and np.allclose(t0, want, rtol=1e-4, atol=1e-4),
                 "at p = 0 no weight is dropped and q = 1: the output must be x @ weight.T + bias")
    t1 = _out(j, "p=1 gives the bias", "t1", want_shape)
    if t1 is not None:
        if np.isnan(t1).any():
            j.fail("p=1 gives the bias", "at p = 1 the output contains NaN (weight * mask / q with q = 0 gives 0 / 0): "
                                          "every weight is dropped, so return the bias (broadcast) alone")
        else:
            j.expect("p=1 gives the bias", t1.shape == want_shape and np.allclose(t1, np.broadcast_to(b, t1.shape), rtol=1e-6, atol=1e-7),
                     "at p = 1 every weight is dropped: the output is the bias for every row")
    _raises(j, "ValueError outside [0, 1]", [("neg", "p = -0.1"), ("big", "p = 1.2"), ("neg_eval", "p = -0.1 with training=False")])


def _dc_safety_plan(plan, rng):
    seed = int(rng.integers(2**31))
    _dc_weights(plan, rng)
    plan.inputs["eye"] = _eye_input(DC_IN, copies=1)
    plan.inputs["g_eye"] = rng.normal(size=(DC_IN + 1, DC_OUT)).astype(np.float32)
    plan.inputs["xr"] = rng.normal(size=(40, DC_IN)).astype(np.float32)
    plan.inputs["g_r"] = rng.normal(size=(40, DC_OUT)).astype(np.float32)
    plan.inputs["W64"] = plan.inputs["W"].astype(np.float64)
    plan.inputs["b64"] = plan.inputs["b"].astype(np.float64)
    plan.inputs["eye64"] = plan.inputs["eye"].astype(np.float64)
    plan.inputs["eye3"] = np.stack([plan.inputs["eye"]] * 2)
    args = (tensor("W"), tensor("b"))
    plan.call("a", tensor("eye"), *args, 0.3)
    plan.call("b", tensor("eye"), *args, 0.3)
    plan.call("c", tensor("eye"), *args, 0.8)
    plan.call("g1", tensor("eye"), *args, 0.3, generator=generator(seed))
    plan.call("g2", tensor("eye"), *args, 0.3, generator=generator(seed))
    plan.call("g3", tensor("eye"), *args, 0.3, generator=generator(seed + 1))
    plan.call("inplace", tensor("eye"), *args, 0.3)
    plan.call("grad", tensor("eye", requires_grad=True), tensor("W", requires_grad=True), tensor("b", requires_grad=True), 0.3,
              backward="g_eye")
    plan.call("grad_eval", tensor("xr", requires_grad=True), tensor("W", requires_grad=True), tensor("b", requires_grad=True),
              0.3, training=False, backward="g_r")
    plan.call("f64", tensor("eye64", "float64"), tensor("W64", "float64"), tensor("b64", "float64"), 0.3)
    plan.call("nobias", tensor("eye"), tensor("W"), None, 0.3)
    plan.call("lead", tensor("eye3"), *args, 0.3)
    plan.call("nobias_p1", tensor("eye"), tensor("W"), None, 1.0)
    prop.global_seed(plan, ("s1", "s2"), tensor("eye"), *args, 0.3)


def _dc_safety_judge(j):
    W, b = j.input_array("W"), j.input_array("b")
    shape = (DC_IN + 1, DC_OUT)
    masks = {}
    for cid in ("a", "b", "c", "g1", "g2", "g3"):
        out = _out(j, "returns a tensor", cid, shape)
        if out is None:
            return
        masks[cid] = _masked_weight(out, DC_IN) == 0
    j.ok("returns a tensor")
    prop.independent(j, "fresh mask each call", masks["a"], masks["b"], 0.3, "two calls' weight masks",
                "the same mask comes back every call (a seed set inside the function, or a mask cached?)")
    for p, cid in ((0.3, "a"), (0.8, "c")):
        m = masks[cid]
        prop.independent(j, f"weights into one unit independent at p={p}", m[:, 0::2], m[:, 1::2], p, "weights from neighbouring inputs",
                    "whole rows of the weight mask are dropped together: that is dropout on the output units; DropConnect "
                    "draws one coin per weight (a mask of weight's full shape)")
        prop.independent(j, f"weights from one input independent at p={p}", m[0::2], m[1::2], p, "weights into neighbouring units",
                    "every unit drops the same inputs: a mask of shape (1, in_features) is dropout on x, not DropConnect; "
                    "draw one coin per weight")
    _generator(j, ("g1", "g2", "g3"), lambda out: _masked_weight(out, DC_IN) == 0, "the generator's seed seems to be ignored",
               shape)
    _global_seed(j, shape)
    why = j.problem("inplace")
    if why:
        j.fail("inputs unchanged", why)
    else:
        changed, unknown = [], []
        for i, (name, plan_name) in enumerate((("x", "eye"), ("weight", "W"), ("bias", "b"))):
            after, before = j.array("inplace", f"after/{i}"), j.input_array(plan_name)
            if after is None or after.shape != before.shape:
                unknown.append(name)
            elif not np.array_equal(after, before.astype(after.dtype, copy=False)):
                changed.append(name)
        if unknown:
            j.fail("inputs unchanged", f"the grader got no usable record of {' and '.join(unknown)} after the call, so it cannot "
                                       "tell whether they were modified")
        else:
            j.expect("inputs unchanged", not changed, f"{' and '.join(changed)} was modified: build a new masked weight "
                                                      "(weight * mask / q) instead of changing weight in place")
    out = _out(j, "gradients in training", "grad", shape)
    if out is not None:
        wt = _masked_weight(out, DC_IN).astype(np.float64)
        g = j.input_array("g_eye").astype(np.float64)
        x = j.input_array("eye").astype(np.float64)
        scale = wt / W.astype(np.float64)  # mask / q, entry by entry
        hint = ("gradients must flow through the masked weight: d/dx = upstream @ (mask * weight / q), d/dweight = "
                "(mask / q) * (upstream.T @ x), d/dbias = upstream summed over rows; keep everything in torch")
        for index, expected in ((0, g @ wt), (1, scale * (g.T @ x)), (2, g.sum(0))):
            _gradient(j, "grad", index, expected, "gradients in training", hint)
            if j.result.properties[-1].status == "fail":
                break
    g, x = j.input_array("g_r").astype(np.float64), j.input_array("xr").astype(np.float64)
    for index, expected in ((0, g @ W.astype(np.float64)), (1, g.T @ x), (2, g.sum(0))):
        _gradient(j, "grad_eval", index, expected, "gradients at evaluation",
                  "with training=False the layer is x @ weight.T + bias, and so are its gradients")
        if j.result.properties[-1].status == "fail":
            break
    out64 = _float64(j, "f64", shape)
    if out64 is not None:
        wt = _masked_weight(out64, DC_IN)
        kept = wt != 0
        W64 = j.input_array("W64")
        j.expect("float64 preserved", np.allclose(wt[kept], W64[kept] / 0.7, rtol=1e-9, atol=1e-12),
                 "kept weights are not W / q to float64 precision: make the mask in the weight's dtype (and q a Python float)")
    nb = _out(j, "bias=None", "nobias", shape)
    if nb is not None:
        j.expect("bias=None", np.all(nb[-1] == 0) and not np.isnan(nb).any(),
                 "with bias=None there is no bias: a zero input row must give zeros (use F.linear(x, w, None) or skip the addition)")
    nb1 = _out(j, "bias=None at p=1 gives zeros", "nobias_p1", shape)
    if nb1 is not None:
        j.expect("bias=None at p=1 gives zeros", not np.isnan(nb1).any() and not nb1.any(),
                 "at p = 1 with bias=None every weight is dropped and there is no bias: the output must be all zeros, never NaN")
    lead = _out(j, "leading dimensions", "lead", (2,) + shape)
    if lead is not None:
        ok = np.array_equal(lead[0] == lead[0][-1], lead[1] == lead[1][-1]) and np.allclose(lead[:, -1], b, rtol=1e-6, atol=1e-7)
        j.expect("leading dimensions", ok, f"x of shape (2, {DC_IN + 1}, {DC_IN}) must give shape (2, {DC_IN + 1}, {DC_OUT}) "
                                           "with one mask for the whole call, like F.linear")


# ---------------------------------------------------------------------------------------------
# gaussian_dropout
# ---------------------------------------------------------------------------------------------
G_SHAPE = (400, 1000)  # 400,000 noise values per call
G_SAFE = (256, 1000)
COVER = 2 * NormalDist().cdf(1.0) - 1  # P(|xi - 1| < sigma) for Gaussian noise: 0.6827
Z_CRIT = NormalDist().inv_cdf(1 - stats.ALPHA_PER_TEST / 2)  # 5.33


def _g_input(rng, shape) -> np.ndarray:
    """Magnitudes uniform in [0.5, 3) with random signs: no zeros, and |x| varied enough that additive noise shows."""
    return (rng.uniform(0.5, 3.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)).astype(np.float32)


def _noise(out, x):
    return out.astype(np.float64) / x.astype(np.float64)


def _judge_gaussian(j, xi, p) -> None:
    """Mean 1, variance p / q and a Gaussian shape for noise values xi, with messages for the usual mistakes."""
    q = 1 - p
    s2 = p / q
    n = xi.size
    mean, var = float(xi.mean()), float(xi.var(ddof=1))
    prop.spend_stat_test(j)
    z = (mean - 1) / np.sqrt(s2 / n)
    if abs(z) <= Z_CRIT:
        j.ok(f"noise mean 1 at p={p}")
    elif abs(mean) < 0.05:
        j.fail(f"noise mean 1 at p={p}", f"the noise (output / x) has mean {mean:.3f}, not 1: it looks centred at 0; "
                                         "multiply x by (1 + sqrt(p / (1 - p)) * z) with z standard normal, not by sqrt(...) * z")
    else:
        j.fail(f"noise mean 1 at p={p}", f"the noise (output / x) has mean {mean:.4f}; multiplicative Gaussian dropout "
                                         f"has mean 1 (accepted within {Z_CRIT * np.sqrt(s2 / n):.4f})")
    prop.spend_stat_test(j)
    from scipy import stats as sps  # imported where needed: every grading imports this module

    lo = sps.chi2.ppf(stats.ALPHA_PER_TEST / 2, n - 1) * s2 / (n - 1)
    hi = sps.chi2.isf(stats.ALPHA_PER_TEST / 2, n - 1) * s2 / (n - 1)
    if lo <= var <= hi:
        j.ok(f"noise variance p/(1-p) at p={p}")
    else:
        guesses = [(s2**2, "the standard deviation used is p / (1 - p); that is the variance: use its square root"),
                   (p, "the variance is p: divide by q, the variance is p / (1 - p)"),
                   (p * q, "the variance is p * (1 - p), the Bernoulli mask's; scaled by 1/q it becomes p / (1 - p)"),
                   (q / p, "the variance is (1 - p) / p: p and q swapped (p is the drop probability)"),
                   (1.0, "the noise has unit variance: scale the standard normal draw by sqrt(p / (1 - p))"),
                   (p**2, "the standard deviation used is p; it should be sqrt(p / (1 - p))")]
        hint = next((h for v, h in guesses if abs(var / v - 1) < 0.05), "")
        j.fail(f"noise variance p/(1-p) at p={p}", f"the noise has variance {var:.4f}; expected p / (1 - p) = {s2:.4f} "
                                                   f"(accepted {lo:.4f} to {hi:.4f})" + (f": {hint}" if hint else ""))
    inside = np.abs(xi - 1) < np.sqrt(s2)
    interval = j.binomial(n, COVER)
    k = int(inside.sum())
    if k in interval:
        j.ok(f"Gaussian noise at p={p}")
    else:
        values = np.unique(np.round(xi[:2000], 6))
        if len(values) <= 3:
            hint = (f"the noise takes only {len(values)} values ({', '.join(f'{v:.3g}' for v in values)}): that is a "
                    "Bernoulli mask; Gaussian dropout multiplies by N(1, p / (1 - p)) noise")
        else:
            hint = "the noise does not look Gaussian (use torch.randn, not torch.rand)"
        j.fail(f"Gaussian noise at p={p}", f"{prop.pct(k / n)} of the noise values lie within one standard deviation of 1; "
                                           f"for Gaussian noise {prop.pct(COVER)} (accepted {interval.describe()}): {hint}")


def _g_contract_plan(plan, rng):
    plan.inputs["x"] = _g_input(rng, G_SHAPE)
    plan.inputs["x_small"] = _g_input(rng, (100, 200))
    for p in RATES:
        plan.call(f"t{p}", tensor("x"), p)
    plan.call("e0.3", tensor("x_small"), 0.3, training=False)
    plan.call("t0", tensor("x_small"), 0.0)
    plan.call("p1", tensor("x_small"), 1.0)
    plan.call("neg", tensor("x_small"), -0.1)
    plan.call("big", tensor("x_small"), 1.5)
    plan.call("neg_eval", tensor("x_small"), -0.1, training=False)


def _g_contract_judge(j):
    x, xs = j.input_array("x"), j.input_array("x_small")
    if _x_shaped_first(j) is None:
        return
    for p in RATES:
        out = _out(j, f"noise mean 1 at p={p}", f"t{p}", x.shape)
        if out is None:
            continue
        if not np.isfinite(out).all():
            j.fail(f"noise mean 1 at p={p}", "the output contains NaN or infinite values")
            continue
        _judge_gaussian(j, _noise(out, x).ravel(), p)
    ev = _out(j, "evaluation returns x", "e0.3", xs.shape)
    if ev is not None:
        j.expect("evaluation returns x", ev.shape == xs.shape and np.array_equal(ev, xs),
                 "with training=False Gaussian dropout returns x unchanged (the noise has mean 1, so nothing needs rescaling)")
    t0 = _out(j, "p=0 returns x", "t0", xs.shape)
    if t0 is not None:
        j.expect("p=0 returns x", t0.shape == xs.shape and np.allclose(t0, xs, rtol=1e-6, atol=0),
                 "at p = 0 the noise variance is 0: the output must equal x")
    _raises(j, "ValueError outside [0, 1)", [("p1", "p = 1 (infinite variance)"), ("neg", "p = -0.1"), ("big", "p = 1.5"),
                                             ("neg_eval", "p = -0.1 with training=False")])


def _g_safety_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["x"] = _g_input(rng, G_SAFE)
    plan.inputs["g"] = rng.normal(size=G_SAFE).astype(np.float32)
    plan.inputs["x64"] = _g_input(rng, (100, 100)).astype(np.float64)
    plan.call("a", tensor("x"), 0.3)
    plan.call("b", tensor("x"), 0.3)
    plan.call("g1", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, generator=generator(seed + 1))
    plan.call("inplace", tensor("x"), 0.3)
    plan.call("grad", tensor("x", requires_grad=True), 0.3, backward="g")
    plan.call("grad_eval", tensor("x", requires_grad=True), 0.3, training=False, backward="g")
    plan.call("f64", tensor("x64", "float64"), 0.3)
    prop.global_seed(plan, ("s1", "s2"), tensor("x"), 0.3)


def _g_safety_judge(j):
    x = j.input_array("x")
    outs = {}
    for cid in ("a", "b", "g1", "g2", "g3"):
        outs[cid] = _out(j, "returns a tensor", cid, x.shape)
        if outs[cid] is None:
            return
    j.ok("returns a tensor")
    above = {cid: _noise(o, x) > 1 for cid, o in outs.items()}  # each entry's noise above its median, 1
    prop.independent(j, "fresh noise each call", above["a"], above["b"], 0.3, "two calls' noise signs (above or below 1)",
                "the same noise comes back every call (a seed set inside the function, or the noise cached?)")
    prop.independent(j, "rows independent", above["a"][0::2], above["a"][1::2], 0.3, "neighbouring rows' noise signs",
                "one noise row seems to be shared by every row: draw noise with x's full shape")
    prop.independent(j, "columns independent", above["a"][:, 0::2], above["a"][:, 1::2], 0.3, "neighbouring columns' noise signs",
                "the noise of neighbouring entries is not independent: draw noise with x's full shape, one value per entry")
    _generator(j, ("g1", "g2", "g3"), lambda out: _noise(out, x) > 1, "the generator's seed seems to be ignored", x.shape)
    _global_seed(j, x.shape)
    # Multiplicative noise has one distribution whatever |x|. Split at the overall median of |xi - 1|: if the noise
    # values are i.i.d. and do not depend on x, every assignment of them to positions is equally likely, so the number
    # of entries with small |x| that lie below the median is exactly hypergeometric (population: every entry;
    # successes: those below the median; draws: the entries with small |x|). The interval cuts 5e-8 from each tail.
    xi = _noise(outs["a"], x)
    dev = np.abs(xi - 1)
    small = np.abs(x) < 1.25
    n_small, below = int(small.sum()), dev < np.median(dev)
    k = int(below[small].sum())
    prop.spend_stat_test(j)
    from scipy import stats as sps

    law = sps.hypergeom(dev.size, int(below.sum()), n_small)
    interval = stats.Interval(n_small, float(below.mean()), int(law.ppf(stats.ALPHA_PER_TEST / 2)),
                              int(law.isf(stats.ALPHA_PER_TEST / 2)))
    if k in interval:
        j.ok("multiplicative noise")
    else:
        j.fail("multiplicative noise",
               f"among entries with |x| < 1.25, {prop.pct(k / n_small)} of the noise values (output / x) are closer to 1 than "
               f"the median over all entries, where noise that does not depend on x gives about 50% (accepted "
               f"{interval.describe()}): the noise's size depends on x, as for additive noise (x + sigma * z); Gaussian "
               "dropout multiplies, x * (1 + sigma * z)")
    prop.unchanged_input(j, "inplace", "x")
    out = _out(j, "gradient is noise * upstream", "grad", x.shape)
    if out is not None:
        _gradient(j, "grad", 0, j.input_array("g").astype(np.float64) * _noise(out, x), "gradient is noise * upstream",
                  "the gradient with respect to x should be the upstream gradient times the same noise as the forward pass")
    _gradient(j, "grad_eval", 0, j.input_array("g").astype(np.float64), "gradient at evaluation is upstream",
              "with training=False the output is x, so the gradient is the upstream gradient unchanged")
    if _float64(j, "f64", j.input_array("x64").shape) is not None:
        j.ok("float64 preserved")


# ---------------------------------------------------------------------------------------------
# drop_path
# ---------------------------------------------------------------------------------------------
DP_SHAPE = (20_000, 4, 3)  # 20,000 samples: a drop-rate interval of about +-1.7 points at p = 0.3


def _per_sample(dropped: np.ndarray):
    """(all dropped, any dropped) per sample, over every dimension but the first."""
    flat = dropped.reshape(len(dropped), -1)
    return flat.all(1), flat.any(1)


def _judge_one_draw(j, name, dropped) -> bool:
    all_, any_ = _per_sample(dropped)
    mixed = all_ != any_
    if not mixed.any():
        j.ok(name)
        return True
    if dropped.ndim >= 3 and np.array_equal(dropped, np.broadcast_to(dropped[..., :1], dropped.shape)):
        hint = ("each position along dim 1 got its own draw (a mask of shape (N, L, 1)); DropPath shares one draw per "
                "sample across every dimension but the first: mask shape (N, 1, ..., 1)")
    else:
        hint = ("entries within a sample were dropped independently: that is dropout; DropPath draws one value per "
                "sample, mask shape (x.shape[0],) + (1,) * (x.dim() - 1)")
    j.fail(name, f"{prop.pct(float(mixed.mean()))} of the samples are partly dropped, partly kept; each sample must be kept "
                 f"or dropped as a whole: {hint}")
    return False


def _dp_contract_plan(plan, rng):
    plan.inputs["x"] = prop.nonzero_input(rng, DP_SHAPE)
    plan.inputs["x_small"] = prop.nonzero_input(rng, (50, 4, 3))
    for p in RATES:
        plan.call(f"t{p}", tensor("x"), p)
    plan.call("e0.3", tensor("x_small"), 0.3, training=False)
    plan.call("t0", tensor("x_small"), 0.0)
    plan.call("t1", tensor("x_small"), 1.0)
    plan.call("e1", tensor("x_small"), 1.0, training=False)
    plan.call("neg", tensor("x_small"), -0.1)
    plan.call("big", tensor("x_small"), 1.5)
    plan.call("neg_eval", tensor("x_small"), -0.1, training=False)


def _dp_contract_judge(j):
    x, xs = j.input_array("x"), j.input_array("x_small")
    if _x_shaped_first(j) is None:
        return
    for p in RATES:
        out = _out(j, f"drop rate at p={p}", f"t{p}", x.shape)
        if out is None:
            continue
        dropped = out == 0
        _judge_one_draw(j, f"one draw per sample at p={p}", dropped)
        _scaled_kept(j, f"kept samples are x / q at p={p}", out[~dropped], x[~dropped], p, "values")
        all_, any_ = _per_sample(dropped)
        if all_.all() or not any_.any():
            j.fail(f"drop rate at p={p}", "every sample was " + ("dropped" if all_.all() else "kept") + " together: "
                   "draw one value per sample (mask shape (N, 1, ..., 1)), not one for the whole batch")
        else:  # per-sample decisions; if samples are mixed (a bug judged above), the entries' rate instead
            prop.drop_rate(j, f"drop rate at p={p}", any_ if (all_ == any_).all() else dropped, p)
    ev = _out(j, "evaluation returns x", "e0.3", xs.shape)
    if ev is not None:
        j.expect("evaluation returns x", ev.shape == xs.shape and np.array_equal(ev, xs),
                 "with training=False DropPath returns x unchanged" + (" (values were zeroed: is training honoured?)"
                                                                        if ev.shape == xs.shape and (ev == 0).any() else ""))
    t0 = _out(j, "p=0 returns x", "t0", xs.shape)
    if t0 is not None:
        j.expect("p=0 returns x", t0.shape == xs.shape and np.allclose(t0, xs, rtol=1e-6, atol=0),
                 "at p = 0 nothing is dropped and q = 1: the output must equal x")
    t1 = _out(j, "p=1 gives zeros", "t1", xs.shape)
    if t1 is not None:
        if np.isnan(t1).any():
            j.fail("p=1 gives zeros", "at p = 1 the output contains NaN (0 / q with q = 0): return zeros at p = 1")
        else:
            j.expect("p=1 gives zeros", (t1 == 0).all(), "at p = 1 every sample is dropped: the output must be all zeros")
    e1 = _out(j, "evaluation at p=1 returns x", "e1", xs.shape)
    if e1 is not None:
        j.expect("evaluation at p=1 returns x", np.array_equal(e1, xs), "with training=False the output is x whatever p is")
    _raises(j, "ValueError outside [0, 1]", [("neg", "p = -0.1"), ("big", "p = 1.5"), ("neg_eval", "p = -0.1 with training=False")])


def _dp_safety_plan(plan, rng):
    seed = int(rng.integers(2**31))
    plan.inputs["x"] = prop.nonzero_input(rng, (8000, 3, 2))
    plan.inputs["g"] = rng.normal(size=(8000, 3, 2)).astype(np.float32)
    plan.inputs["x2"] = prop.nonzero_input(rng, (500, 7))
    plan.inputs["x4"] = prop.nonzero_input(rng, (300, 3, 4, 5))
    plan.inputs["x64"] = prop.nonzero_input(rng, (200, 3, 2)).astype(np.float64)
    plan.call("a", tensor("x"), 0.3)
    plan.call("b", tensor("x"), 0.3)
    plan.call("c", tensor("x"), 0.8)
    plan.call("g1", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g2", tensor("x"), 0.3, generator=generator(seed))
    plan.call("g3", tensor("x"), 0.3, generator=generator(seed + 1))
    plan.call("inplace", tensor("x"), 0.3)
    plan.call("grad", tensor("x", requires_grad=True), 0.3, backward="g")
    plan.call("grad_eval", tensor("x", requires_grad=True), 0.3, training=False, backward="g")
    plan.call("x2", tensor("x2"), 0.3)
    plan.call("x4", tensor("x4"), 0.3)
    plan.call("f64", tensor("x64", "float64"), 0.3)
    prop.global_seed(plan, ("s1", "s2"), tensor("x"), 0.3)


def _dp_safety_judge(j):
    x = j.input_array("x")
    samples = {}
    for cid in ("a", "b", "c", "g1", "g2", "g3"):
        out = _out(j, "returns a tensor", cid, x.shape)
        if out is None:
            return
        samples[cid] = _per_sample(out == 0)[1]
    j.ok("returns a tensor")
    prop.independent(j, "fresh mask each call", samples["a"], samples["b"], 0.3, "two calls' per-sample decisions",
                "the same samples are dropped on every call (a seed set inside the function, or a mask cached?)")
    for p, cid in ((0.3, "a"), (0.8, "c")):
        s = samples[cid]
        prop.independent(j, f"samples independent at p={p}", s[0::2], s[1::2], p, "neighbouring samples' decisions",
                    "neighbouring samples are kept or dropped together: draw one independent value per sample")
    _generator(j, ("g1", "g2", "g3"), lambda out: _per_sample(out == 0)[1], "the generator's seed seems to be ignored", x.shape)
    _global_seed(j, x.shape)
    prop.unchanged_input(j, "inplace", "x")
    out = _out(j, "gradient in training is mask / q * upstream", "grad", x.shape)
    if out is not None:
        _gradient(j, "grad", 0, j.input_array("g") * (out != 0) / np.float32(0.7), "gradient in training is mask / q * upstream",
                  "the gradient with respect to x should be the upstream gradient masked and divided by q, like the forward pass")
    _gradient(j, "grad_eval", 0, j.input_array("g"), "gradient at evaluation is upstream",
              "with training=False the output is x, so the gradient is the upstream gradient unchanged")
    problems = []
    for cid in ("x2", "x4"):
        xin = j.input_array(cid)
        why = j.problem(cid)
        o = None if why else j.array(cid)
        if why:
            problems.append(f"x of shape {xin.shape}: {why}")
        elif o is None or o.dtype.kind != "f":
            problems.append(f"x of shape {xin.shape} gave " + ("no output" if o is None else f"an output of {o.dtype}"))
        elif o.shape != xin.shape:
            problems.append(f"x of shape {xin.shape} gave an output of shape {o.shape}")
        else:
            all_, any_ = _per_sample(o == 0)
            kept = o != 0
            if (all_ != any_).any() or not np.allclose(o[kept], xin[kept] / 0.7, rtol=RTOL):
                problems.append(f"for x of shape {xin.shape} some samples were not kept (x / q) or dropped as a whole")
    j.expect("one draw per sample for 2-D and 4-D x", not problems,
             "; ".join(problems) + ": build the mask's shape from x.dim(), (x.shape[0],) + (1,) * (x.dim() - 1)")
    x64 = j.input_array("x64")
    o = _float64(j, "f64", x64.shape)
    if o is not None:
        kept = o != 0
        j.expect("float64 preserved", np.allclose(o[kept], x64[kept] / 0.7, rtol=1e-12, atol=0),
                 "kept values are not x / q to float64 precision (a float32 mask or scale?)")


# ---------------------------------------------------------------------------------------------
# practice questions (chapter 7); the explanations are the chapter's toggled answers
# ---------------------------------------------------------------------------------------------
ANSWERS = [
    ("answer_q1", "b", "PyTorch's dropout is inverted, so its stored weights are W = q M and tau = l^2 / (2 N lambda q) = 5; "
                      "Gal and Ghahramani's q l^2 / (2 N lambda) holds for classic dropout's weights M"),
    ("answer_q2", "c", "model.train() also switches batch norm to batch statistics; switch only the dropout modules to training mode"),
    ("answer_q3", "c", "Gaussian dropout's variance is p / (1 - p) = 0.25, so its standard deviation is 0.5"),
    ("answer_q4", "b", "the running variance was estimated on sigma^2 / q = 2 sigma^2, but at evaluation the input has variance sigma^2"),
    ("answer_q5", "b", "scaled_dot_product_attention is a function with no training mode: it drops whenever dropout_p > 0"),
]


CHECKS = [
    Check("mc_dropout_predict.contract", "mc_dropout_predict", _mc_contract_plan, _mc_contract_judge,
          "n_samples passes with dropout on and batch norm in eval mode, mean and std of the passes, no gradients, "
          "modes restored, model unchanged, dtype and device, ValueError for n_samples < 2"),
    Check("mc_dropout_predict.more", "mc_dropout_predict", _mc_more_plan, _mc_more_judge,
          "nested dropout layers in mixed modes, AlphaDropout in a SELU network, float64, the input unchanged"),
    Check("dropconnect_linear.contract", "dropconnect_linear", _dc_contract_plan, _dc_contract_judge,
          "kept weights W / q, drop rate at p = 0.1, 0.3, 0.8, one mask for the batch, bias unmasked, evaluation, "
          "p = 0 and 1, ValueError"),
    Check("dropconnect_linear.safety", "dropconnect_linear", _dc_safety_plan, _dc_safety_judge,
          "one coin per weight, fresh masks, the generator, inputs untouched, gradients to x, weight and bias, float64, "
          "bias=None, leading dimensions"),
    Check("gaussian_dropout.contract", "gaussian_dropout", _g_contract_plan, _g_contract_judge,
          "noise mean 1, variance p / (1 - p) and Gaussian at p = 0.1, 0.3, 0.8, evaluation, p = 0, ValueError outside [0, 1)"),
    Check("gaussian_dropout.safety", "gaussian_dropout", _g_safety_plan, _g_safety_judge,
          "multiplicative, independent and fresh noise, the generator, input untouched, gradients, float64"),
    Check("drop_path.contract", "drop_path", _dp_contract_plan, _dp_contract_judge,
          "one draw per sample, kept samples x / q, drop rate at p = 0.1, 0.3, 0.8, evaluation, p = 0 and 1, ValueError"),
    Check("drop_path.safety", "drop_path", _dp_safety_plan, _dp_safety_judge,
          "samples independent, fresh masks, the generator, input untouched, gradients, 2-D and 4-D x, float64"),
] + [
    prop.answer_check(f"{var}.beyond", var, [letter], f"{hint} (chapter 7, Practice questions)")
    for var, letter, hint in ANSWERS
]
