"""Checks for assignment 08_in_practice (diagnosis): seven repaired functions and classes, and five answers.

Each task hands the student broken PyTorch code; the student returns the repaired function or class with
the same name and signature. The grader checks behaviour, never the text of the fix. p is a DROP
probability and q = 1 - p; TensorFlow 1's keep_prob is a KEEP probability.

Contracts, clause by clause, with the check property that exercises each (``check.property``):

``train_and_validate(model, optimizer, x, y, x_val, y_val, epochs, batch_size)`` (bug: validation in
training mode):

- one optimizer step per minibatch ``x[i:i + batch_size]``, in order, ``epochs`` times; every training
  forward pass with the model in training mode (dropout and batch normalization) ->
  ``fixed.training steps in train mode`` (epochs 2 and 3 catch a missing ``model.train()``),
  ``contract.number of training steps``;
- each step's loss is the cross-entropy of that minibatch (its gradients alone: zero_grad before each backward),
  on ``x[i:i + batch_size]``, ``y[i:i + batch_size]`` in that order -> ``contract.one cross-entropy step per
  minibatch, in order`` (the scenario wraps ``optimizer.step`` and compares the output bias's gradient with the
  one the cross-entropy of the last training pass implies; the mean over the minibatch, PyTorch's default, and
  the sum are both accepted; which optimizer is used is the grader's: it passes SGD);
- after each epoch one forward pass on all of ``x_val`` with the model in evaluation mode ->
  ``fixed.validation in eval mode``, without recording gradients -> ``contract.validation without
  gradients``;
- returns a list of Python floats, one per epoch, each the fraction of ``x_val`` whose argmax matches
  ``y_val`` in that validation pass -> ``fixed.returns one accuracy per epoch``, ``fixed.accuracies are
  the validation passes' accuracies``; the last equals the trained model's evaluation accuracy ->
  ``contract.last accuracy is the final model's``; sizes that do not divide -> the same properties
  in ``contract``.

``Classifier(n_in, n_hidden, n_out, p=0.5)`` (bug: ``F.dropout`` without ``training=self.training``) and
``ScaledMLP(n_in, n_hidden, n_out, p=0.5)`` (bug: the paper's factor q at evaluation on top of inverted
dropout): ``self.fc1``, ``self.fc2`` are the only parameters (state_dict keys fc1.weight, fc1.bias,
fc2.weight, fc2.bias) -> ``*.loads the checkpoint``; training: ``fc2(m * relu(fc1(x)) / q)`` with a
fresh Bernoulli mask, drop probability p -> ``*.drop rate at p=...``, ``*.kept values are h / q at
p=...``, ``contract.fresh mask each forward``, ``contract.rows independent``, ``contract.default p is
0.5``; evaluation: ``fc2(relu(fc1(x)))`` exactly, no mask and no factor -> ``fixed.eval() gives the
deterministic output``, also when switched through a parent -> ``contract.eval() of a parent model``,
and ``train()`` after ``eval()`` drops again -> ``fixed.train() after eval() drops again``.

``BatchNormMLP(n_in, n_hidden, n_out, p=0.5)`` (bug: dropout before batch normalization): parameters
and buffers fc1, bn (BatchNorm1d(n_hidden)), fc2 -> ``*.loads the checkpoint``; training:
``fc2(dropout(relu(bn(fc1(x)))))`` with bn on batch statistics of the clean fc1 output ->
``fixed.batch norm sees no dropout`` (its running statistics after one training pass) and
``fixed.training output``, dropout after the activation with drop probability p ->
``*.drop rate at p=...``, ``*.kept values are h / q at p=...``; evaluation with the running statistics,
no dropout -> ``fixed.eval() gives the deterministic output``; fresh masks and a parent's eval() ->
``contract``.

``mc_predict(model, x, n_samples)`` (bug: ``model.train()`` switches batch normalization too): returns
the mean of ``n_samples`` forward passes with every nn.Dropout in training mode and every other module
in evaluation mode -> ``fixed.values are h / q or 0`` (batch normalization on running statistics),
``fixed.drop rate``, a batch of one works -> ``fixed.a single example``; fresh masks per sample and the
mean over samples -> ``contract.fresh mask for each sample``, ``contract.mean over the samples``; the
model's parameters and buffers unchanged -> ``fixed.model unchanged``; every module's mode restored,
from evaluation -> ``fixed.modes restored`` and from training -> ``contract.modes restored``; no
gradient recorded -> ``contract.no gradient``.

``SequenceDropout(p)`` (bug: the mask made on the CPU in float32): x (B, T, F); training: one draw per
(b, f) shared over T -> ``*.one mask per sequence``, drop probability p -> ``*.drop rate at p=...``,
kept x / q -> ``*.kept values are x / q at p=...``; the mask made on x's device -> ``fixed.mask made on
x's device`` (a tensor on PyTorch's data-less "meta" device, so this is tested on every machine, plus
the values on the grading device) and in x's dtype -> ``fixed.output dtype is x's dtype`` (bfloat16);
evaluation returns x -> ``fixed.evaluation returns x``, and so does p = 0 in training (0 <= p < 1) ->
``contract.p=0 returns x``; a fresh mask each call, independent across the batch and the features ->
``contract``; float64 -> ``contract.float64``; float16 on the meta device -> ``contract.float16 on another
device``.

``PortedNet(n_in, n_hidden, n_out, keep_prob_input=0.8, keep_prob_hidden=0.5)`` (bug: keep_prob passed
as nn.Dropout's p): fc1, fc2 only -> ``*.loads the checkpoint``; training
``fc2(m_h * relu(fc1(m_in * x / q_in)) / q_h)`` with keep probabilities q_in = keep_prob_input and q_h
= keep_prob_hidden -> ``fixed.input keep probability`` (q_h = 1), ``fixed.hidden keep probability``
(q_in = 1), ``contract.both``, ``contract.default keep probabilities``; kept values scaled by
1 / (q_in q_h) -> ``*.kept values``; evaluation ``fc2(relu(fc1(x)))`` -> ``fixed.eval() gives the
deterministic output``; keep_prob = 1 means no dropout -> ``fixed.input keep probability`` (q_h = 1); fresh
masks on every call -> ``contract.fresh mask each forward``.

Statistics: drop rates are binomial tests, independence and freshness exact conditional tests at the masks'
*observed* drop rates (``properties.independent``), each with a false-failure probability of at most 1e-7 and
at most ten per check, so at most 1e-6 per check (``autograde.stats``); everything else is exact.

How the masks are seen: the grader loads weights that make every hidden value positive and ``fc2`` the
identity (and, for PortedNet, ``fc1`` too), so a zero in the output is a dropped unit and a kept value
divided by the known clean value is the scaling. ``train_and_validate`` is watched through forward hooks
on the model's batch-normalization and dropout layers, which record their mode at every call.

The practice questions of chapter 8 are graded as ``answer_q1`` ... ``answer_q5``.
"""

from __future__ import annotations

import math

import numpy as np

from ..probe import plan_device, scenario, tensor
from . import Check
from . import properties as prop

RTOL = 1e-4  # float32 forward passes against float64 expectations
BATCH, HIDDEN = 200, 40  # 8,000 hidden entries per forward: a drop-rate interval of about +-2.9 points at p = 0.3
EPS = 1e-5  # BatchNorm1d's default eps
MOMENTUM = 0.1  # BatchNorm1d's default momentum


# ---------------------------------------------------------------------------------------------
# Shared: a small network, built from the plan's weights, run in the modes a check asks for
# ---------------------------------------------------------------------------------------------
@scenario("out[0-9]*", "rmean[0-9]*", "rvar[0-9]*")
def net_scenario(cls, ctor, state, x, modes, wrap=False, device="cpu"):
    """Trusted: construct ``cls(*ctor)``, load ``state`` (pairs of name and tensor) strictly, and record one
    output per mode ('train' or 'eval'), with batch-norm running statistics after each when there is a
    ``bn`` submodule.

    With ``wrap`` the mode is switched on an ``nn.Sequential`` holding the network, as a larger model would.
    """
    import torch
    from torch import nn

    net = cls(*ctor)
    facts = {"is_module": isinstance(net, nn.Module)}
    if not facts["is_module"]:
        facts["type"] = type(net).__name__
        return facts
    try:
        net.load_state_dict(dict(state), strict=True)
    except (RuntimeError, KeyError) as exc:
        have = sorted(net.state_dict().keys())
        facts["load_error"] = (f"{type(exc).__name__}: the checkpoint has keys {sorted(k for k, _ in state)}, "
                               f"the model {have}")[:380]
        return facts
    net.to(device)
    outer = nn.Sequential(net) if wrap else net
    bn = getattr(net, "bn", None)
    for i, mode in enumerate(modes):
        outer.train(mode == "train")
        with torch.no_grad():
            out = net(x)
        if not isinstance(out, torch.Tensor):
            facts[f"type{i}"] = type(out).__name__
            continue
        facts[f"out{i}"] = out
        if isinstance(bn, nn.BatchNorm1d) and bn.running_mean is not None:
            facts[f"rmean{i}"], facts[f"rvar{i}"] = bn.running_mean.clone(), bn.running_var.clone()
    return facts


def _state_pairs(plan, prefix, named):
    """Store named arrays as plan inputs; return the (name, tensor encoding) pairs a scenario loads."""
    pairs = []
    for name, arr in named.items():
        key = f"{prefix}:{name}"
        plan.inputs[key] = arr
        dtype = "int64" if arr.dtype.kind == "i" else "float32"
        pairs.append([name, tensor(key, dtype)])
    return pairs


def _positive_net(plan, rng, prefix, n_in, identity_fc1=False):
    """Weights for fc1 -> ReLU -> fc2 with every hidden value positive and fc2 the identity."""
    named = {}
    if identity_fc1:
        named["fc1.weight"] = np.eye(HIDDEN, n_in, dtype=np.float32)
        named["fc1.bias"] = np.zeros(HIDDEN, np.float32)
    else:
        named["fc1.weight"] = rng.uniform(0.02, 0.2, size=(HIDDEN, n_in)).astype(np.float32)
        named["fc1.bias"] = rng.uniform(0.1, 0.5, size=HIDDEN).astype(np.float32)
    named["fc2.weight"] = np.eye(HIDDEN, dtype=np.float32)
    named["fc2.bias"] = np.zeros(HIDDEN, np.float32)
    return _state_pairs(plan, prefix, named)


def _clean_hidden(j, prefix, x_name="x"):
    """relu(fc1(x)) in float64 from the plan's arrays: what fc2 (the identity) receives without dropout."""
    x = j.input_array(x_name).astype(np.float64)
    w = j.input_array(f"{prefix}:fc1.weight").astype(np.float64)
    b = j.input_array(f"{prefix}:fc1.bias").astype(np.float64)
    return np.maximum(x @ w.T + b, 0.0)


def _net_out(j, name, cid, i=0, like=None):
    """Output ``i`` of a net scenario, or a failure of property ``name`` with the reason (also when ``like``
    is given and the output does not have its shape)."""
    why = j.problem(cid)
    if why:
        j.fail(name, why.replace(" raised ", " (construction or forward) raised "))
        return None
    if not j.value(cid, "is_module"):
        j.fail(name, f"{j.plan.target}(...) must be an nn.Module (class {j.plan.target}(nn.Module) with super().__init__())")
        return None
    if j.value(cid, "load_error"):
        j.fail(name, "the trained checkpoint does not load: keep the layer names and sizes of the original "
                     f"({j.value(cid, 'load_error')})")
        return None
    if j.value(cid, f"type{i}"):
        j.fail(name, f"forward returned a {j.value(cid, f'type{i}')}, expected a torch.Tensor")
        return None
    out = j.array(cid, f"out{i}")
    if out is None:
        j.fail(name, "the output did not come back (expected a torch.Tensor)")
        return None
    if like is not None and not _shape_ok(j, name, out, like):
        return None
    return out


def _independent(j, name, a, b, what, mistake):
    """Independence of two boolean 'dropped' masks, judged at their observed drop rate (so a wrong rate
    costs only the rate property, not this one too)."""
    if not _shape_ok(j, name, a, b):
        return
    p_seen = float((a.mean() + b.mean()) / 2)
    prop.independent(j, name, a, b, p_seen, what, mistake)


def _loads(j, cid):
    if _net_out(j, "loads the checkpoint", cid) is not None:
        j.ok("loads the checkpoint")


def _shape_ok(j, name, out, ref) -> bool:
    """The output has the reference's shape and holds numbers; else a failure of ``name`` saying what came back."""
    if out.dtype.kind not in "biuf":
        j.fail(name, f"the output holds {out.dtype} values, expected numbers")
        return False
    if out.shape != ref.shape:
        j.fail(name, f"expected output shape {ref.shape}, got {out.shape}")
        return False
    return True


def _kept_values(j, name, out, clean, q, what="h"):
    """Survivors (nonzero outputs where the clean value is nonzero) must equal clean / q."""
    if not _shape_ok(j, name, out, clean):
        return
    kept = (out != 0) & (clean != 0)
    got, want = out[kept].astype(np.float64), clean[kept]
    if kept.sum() == 0:
        j.fail(name, "every unit was dropped: nothing survived to check the scaling")
        return
    close = lambda a, b: np.allclose(a, b, rtol=RTOL, atol=1e-6)  # noqa: E731
    if close(got, want / q):
        j.ok(name)
    elif close(got, want):
        j.fail(name, f"kept values equal {what}: that is classic dropout's training output (no 1 / q); PyTorch's "
                     f"dropout, and the checkpoints trained with it, divide the survivors by q = {q:g}")
    elif close(got, want * q):
        j.fail(name, f"kept values equal {what} * q: divide by q = {q:g}, do not multiply")
    elif q < 1 and close(got, want / (1 - q)):
        j.fail(name, f"kept values equal {what} / (1 - q): the survivors were divided by the drop probability; "
                     f"divide by the keep probability q = {q:g}")
    else:
        ratio = float(np.median(got / want))
        j.fail(name, f"kept values should be {what} / q = {what} / {q:g}; they are about {ratio:.3g} times {what}")


def _drop_rate(j, name, out, clean, p):
    """Among units whose clean value is nonzero, each must be dropped with probability p."""
    if not _shape_ok(j, name, out, clean):
        return
    live = clean != 0
    prop.drop_rate(j, name, (out == 0)[live], p)


def _eval_output(j, name, out, clean, q, where):
    """The evaluation output must be the clean value: no mask, no factor."""
    if out.shape != clean.shape:
        j.fail(name, f"expected output shape {clean.shape}, got {out.shape}")
        return
    if np.allclose(out, clean, rtol=RTOL, atol=1e-6):
        j.ok(name)
    elif ((out == 0) & (clean != 0)).any():
        frac = float(((out == 0) & (clean != 0)).mean())
        j.fail(name, f"{where} {prop.pct(frac)} of the hidden units were still dropped: dropout is still active in "
                     "evaluation mode (F.dropout(h, p) defaults to training=True: pass training=self.training, or "
                     "use an nn.Dropout made in __init__; a module made inside forward is always in training mode)")
    elif q < 1 and np.allclose(out, clean * q, rtol=RTOL, atol=1e-6):
        j.fail(name, f"{where} the output is q = {q:g} times fc2(relu(fc1(x))): double scaling. Inverted dropout "
                     "already divided by q in training, so evaluation needs no factor")
    elif q < 1 and np.allclose(out, clean / q, rtol=RTOL, atol=1e-6):
        j.fail(name, f"{where} the output is fc2(relu(fc1(x))) / q: the 1 / q belongs to training only")
    else:
        j.fail(name, f"{where} the output should be exactly the network without dropout, fc2(relu(fc1(x)))")


# ---------------------------------------------------------------------------------------------
# Classifier and ScaledMLP: the same contract, two different bugs
# ---------------------------------------------------------------------------------------------
N_IN = 12


def _fc_plan(target_p_modes):
    def build(plan, rng):
        plan.inputs["x"] = rng.uniform(0.5, 1.5, size=(BATCH, N_IN)).astype(np.float32)
        state = _positive_net(plan, rng, "w", N_IN)
        sc = "autograde.checks.in_practice:net_scenario"
        for cid, p, modes, wrap in target_p_modes:
            ctor = [N_IN, HIDDEN, HIDDEN] + ([] if p is None else [p])
            plan.call(cid, ctor, state, tensor("x"), modes, wrap=wrap, device=plan_device(), scenario=sc)
    return build


_fc_fixed_plan = _fc_plan([("a", 0.3, ["train", "eval", "train"], False)])
_fc_contract_plan = _fc_plan([
    ("low", 0.1, ["train"], False), ("high", 0.8, ["train", "train"], False),
    ("parent", 0.3, ["eval"], True), ("default", None, ["train"], False),
])


def _fc_fixed_judge(j):
    clean = _clean_hidden(j, "w")
    _loads(j, "a")
    t = _net_out(j, "drop rate at p=0.3", "a", 0)
    if t is not None:
        _drop_rate(j, "drop rate at p=0.3", t, clean, 0.3)
        _kept_values(j, "kept values are h / q at p=0.3", t, clean, 0.7)
    e = _net_out(j, "eval() gives the deterministic output", "a", 1)
    if e is not None:
        _eval_output(j, "eval() gives the deterministic output", e, clean, 0.7, "after model.eval()")
    again = _net_out(j, "train() after eval() drops again", "a", 2)
    if again is not None:
        _drop_rate(j, "train() after eval() drops again", again, clean, 0.3)


def _fc_contract_judge(j):
    clean = _clean_hidden(j, "w")
    for cid, p in (("low", 0.1), ("high", 0.8)):
        t = _net_out(j, f"drop rate at p={p}", cid, 0)
        if t is not None:
            _drop_rate(j, f"drop rate at p={p}", t, clean, p)
            _kept_values(j, f"kept values are h / q at p={p}", t, clean, 1 - p)
    a, b = _net_out(j, "fresh mask each forward", "high", 0), _net_out(j, "fresh mask each forward", "high", 1)
    if a is not None and b is not None:
        _independent(j, "fresh mask each forward", a == 0, b == 0, "two forward passes' masks",
                     "the same mask comes back on every forward pass (a mask cached, or a seed set in forward?)")
        _independent(j, "rows independent", (a == 0)[0::2], (a == 0)[1::2], "neighbouring examples' masks",
                     "one mask seems to be shared by every example of the batch: draw it with h's full shape")
    e = _net_out(j, "eval() of a parent model", "parent", 0)
    if e is not None:
        _eval_output(j, "eval() of a parent model", e, clean, 0.7, "after .eval() on an nn.Sequential holding the model,")
    d = _net_out(j, "default p is 0.5", "default", 0)
    if d is not None:
        _drop_rate(j, "default p is 0.5", d, clean, 0.5)


# ---------------------------------------------------------------------------------------------
# BatchNormMLP: dropout after batch normalization
# ---------------------------------------------------------------------------------------------
def _bn_plan(calls):
    def build(plan, rng):
        plan.inputs["x"] = rng.normal(size=(BATCH, N_IN)).astype(np.float32)
        named = {
            "fc1.weight": (rng.normal(size=(HIDDEN, N_IN)) / math.sqrt(N_IN)).astype(np.float32),
            "fc1.bias": rng.uniform(-0.5, 0.5, size=HIDDEN).astype(np.float32),
            "bn.weight": rng.uniform(0.5, 1.5, size=HIDDEN).astype(np.float32),
            "bn.bias": rng.uniform(0.3, 0.8, size=HIDDEN).astype(np.float32),  # mostly positive: few ReLU zeros
            "bn.running_mean": rng.normal(0, 0.5, size=HIDDEN).astype(np.float32),
            "bn.running_var": rng.uniform(0.5, 2.0, size=HIDDEN).astype(np.float32),
            "bn.num_batches_tracked": np.array(100, dtype=np.int64),
            "fc2.weight": np.eye(HIDDEN, dtype=np.float32),
            "fc2.bias": np.zeros(HIDDEN, np.float32),
        }
        state = _state_pairs(plan, "w", named)
        sc = "autograde.checks.in_practice:net_scenario"
        for cid, p, modes, wrap in calls:
            plan.call(cid, [N_IN, HIDDEN, HIDDEN, p], state, tensor("x"), modes, wrap=wrap, device=plan_device(),
                      scenario=sc)
    return build


_bn_fixed_plan = _bn_plan([("a", 0.3, ["train", "eval"], False)])
_bn_contract_plan = _bn_plan([("high", 0.8, ["train", "train"], False), ("low", 0.1, ["train"], False),
                              ("parent", 0.3, ["eval"], True)])


def _bn_expected(j):
    """Training-mode hidden values, running statistics after one training pass, and the evaluation output."""
    a = {k.split(":", 1)[1]: j.input_array(k).astype(np.float64) for k in j.plan.inputs if k.startswith("w:")}
    z = j.input_array("x").astype(np.float64) @ a["fc1.weight"].T + a["fc1.bias"]
    mean, var = z.mean(0), z.var(0)
    h_train = np.maximum(a["bn.weight"] * (z - mean) / np.sqrt(var + EPS) + a["bn.bias"], 0.0)
    n = z.shape[0]
    rmean = (1 - MOMENTUM) * a["bn.running_mean"] + MOMENTUM * mean
    rvar = (1 - MOMENTUM) * a["bn.running_var"] + MOMENTUM * var * n / (n - 1)
    h_eval = np.maximum(a["bn.weight"] * (z - rmean) / np.sqrt(rvar + EPS) + a["bn.bias"], 0.0)
    return h_train, rmean, rvar, h_eval


def _bn_fixed_judge(j):
    h_train, rmean, rvar, h_eval = _bn_expected(j)
    _loads(j, "a")
    t = _net_out(j, "batch norm sees no dropout", "a", 0, like=h_train)
    if t is None:
        return
    got_m, got_v = j.array("a", "rmean0"), j.array("a", "rvar0")
    if got_m is None or got_v is None or got_m.shape != rmean.shape or got_v.shape != rvar.shape:
        j.fail("batch norm sees no dropout", "the model has no BatchNorm1d named bn: keep self.bn = nn.BatchNorm1d(n_hidden)")
        return
    if np.allclose(got_m, rmean, rtol=RTOL, atol=1e-5) and np.allclose(got_v, rvar, rtol=RTOL, atol=1e-5):
        j.ok("batch norm sees no dropout")
    else:
        ratio = float(np.median(((got_v - 0.9 * j.input_array("w:bn.running_var")) / (rvar - 0.9 * j.input_array("w:bn.running_var")))))
        j.fail("batch norm sees no dropout",
               f"after one training pass bn's running statistics are not those of fc1(x): the variance it recorded is "
               f"about {ratio:.2f} times the clean one. Dropout (on fc1's output or on the network's input) reaches the "
               "batch-norm layer, whose statistics then describe inputs with dropout that evaluation never sees "
               "(variance shift): put dropout after bn and the activation")
    _drop_rate(j, "drop rate at p=0.3", t, h_train, 0.3)
    live = (t != 0) & (h_train != 0)
    if live.any() and np.allclose(t[live], h_train[live] / 0.7, rtol=RTOL, atol=1e-5) and not (t[h_train == 0] != 0).any():
        j.ok("training output")
    else:
        j.fail("training output", "in training the output should be dropout(relu(bn(fc1(x)))) with bn on the batch's "
                                  "statistics and survivors divided by q = 0.7 (then fc2)")
    e = _net_out(j, "eval() gives the deterministic output", "a", 1)
    if e is not None:
        _eval_output(j, "eval() gives the deterministic output", e, h_eval, 0.7, "after model.eval()")


def _bn_contract_judge(j):
    h_train, _, _, h_eval = _bn_expected(j)
    for cid, p in (("high", 0.8), ("low", 0.1)):
        t = _net_out(j, f"drop rate at p={p}", cid, 0)
        if t is not None:
            _drop_rate(j, f"drop rate at p={p}", t, h_train, p)
            _kept_values(j, f"kept values are h / q at p={p}", t, h_train, 1 - p)
    a = _net_out(j, "fresh mask each forward", "high", 0, like=h_train)
    b = _net_out(j, "fresh mask each forward", "high", 1, like=h_train)
    if a is not None and b is not None:
        live = h_train != 0
        _independent(j, "fresh mask each forward", (a == 0)[live], (b == 0)[live], "two forward passes' masks",
                     "the same mask comes back on every forward pass")
    e = _net_out(j, "eval() of a parent model", "parent", 0)
    if e is not None:
        # No training pass ran: the running statistics are the checkpoint's.
        a_ = {k.split(":", 1)[1]: j.input_array(k).astype(np.float64) for k in j.plan.inputs if k.startswith("w:")}
        z = j.input_array("x").astype(np.float64) @ a_["fc1.weight"].T + a_["fc1.bias"]
        h0 = np.maximum(a_["bn.weight"] * (z - a_["bn.running_mean"]) / np.sqrt(a_["bn.running_var"] + EPS) + a_["bn.bias"], 0)
        _eval_output(j, "eval() of a parent model", e, h0, 0.7, "after .eval() on an nn.Sequential holding the model,")


# ---------------------------------------------------------------------------------------------
# mc_predict: dropout on, batch normalization in evaluation mode, nothing changed
# ---------------------------------------------------------------------------------------------
@scenario("out")
def mc_scenario(fn, state, x, p, n_samples, start_mode, device="cpu"):
    """Trusted: build Linear -> BatchNorm1d -> ReLU -> Dropout(p) -> Linear from ``state``, put it in
    ``start_mode``, call ``fn(model, x, n_samples)``; record the result, whether it requires grad, every
    module's mode afterwards and whether the parameters and buffers are unchanged."""
    import torch
    from torch import nn

    d_in, h = x.shape[1], dict(state)["0.weight"].shape[0]
    model = nn.Sequential(nn.Linear(d_in, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, h))
    model.load_state_dict(dict(state))
    model.to(device).train(start_mode == "train")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = fn(model, x, n_samples)
    facts = {"type": type(out).__name__}
    after = model.state_dict()
    facts["unchanged"] = all(torch.equal(before[k], after[k]) for k in before)
    facts["changed"] = [k for k in before if not torch.equal(before[k], after[k])][:6]
    facts["modes"] = [bool(m.training) for m in model.modules()]
    facts["module_names"] = [type(m).__name__ for m in model.modules()]
    if isinstance(out, torch.Tensor):
        facts["requires_grad"] = bool(out.requires_grad)
        facts["out"] = out.detach()
    return facts


def _mc_plan(calls):
    def build(plan, rng):
        plan.inputs["x"] = rng.normal(size=(BATCH, N_IN)).astype(np.float32)
        named = {
            "0.weight": (rng.normal(size=(HIDDEN, N_IN)) / math.sqrt(N_IN)).astype(np.float32),
            "0.bias": rng.uniform(-0.2, 0.2, size=HIDDEN).astype(np.float32),
            "1.weight": rng.uniform(0.5, 1.5, size=HIDDEN).astype(np.float32),
            "1.bias": rng.uniform(0.5, 1.0, size=HIDDEN).astype(np.float32),
            "1.running_mean": rng.normal(0, 1.0, size=HIDDEN).astype(np.float32),  # far from a batch's own mean
            "1.running_var": rng.uniform(2.0, 4.0, size=HIDDEN).astype(np.float32),
            "1.num_batches_tracked": np.array(100, dtype=np.int64),
            "4.weight": np.eye(HIDDEN, dtype=np.float32),
            "4.bias": np.zeros(HIDDEN, np.float32),
        }
        state = _state_pairs(plan, "w", named)
        plan.inputs["x1"] = plan.inputs["x"][:1].copy()
        sc = "autograde.checks.in_practice:mc_scenario"
        for cid, x_name, p, n, mode in calls:
            plan.call(cid, state, tensor(x_name), p, n, mode, device=plan_device(), scenario=sc)
    return build


_mc_fixed_plan = _mc_plan([("one", "x", 0.3, 1, "eval"), ("single", "x1", 0.3, 1, "eval")])
_mc_contract_plan = _mc_plan([("two", "x", 0.3, 2, "eval"), ("from_train", "x", 0.8, 1, "train"),
                              ("many", "x", 0.3, 8, "eval")])


def _mc_hidden(j, x_name="x"):
    """relu(bn(fc(x))) with the checkpoint's running statistics: what Dropout receives in MC prediction."""
    a = {k.split(":", 1)[1]: j.input_array(k).astype(np.float64) for k in j.plan.inputs if k.startswith("w:")}
    z = j.input_array(x_name).astype(np.float64) @ a["0.weight"].T + a["0.bias"]
    return np.maximum(a["1.weight"] * (z - a["1.running_mean"]) / np.sqrt(a["1.running_var"] + EPS) + a["1.bias"], 0.0)


def _mc_out(j, name, cid):
    why = j.problem(cid)
    if why:
        if "more than 1 value per channel" in why:
            why += (" (batch normalization is in training mode: model.train() switched it to batch statistics, "
                    "which a single example cannot have)")
        j.fail(name, why)
        return None
    out = j.array(cid, "out")
    if out is None:
        j.fail(name, f"mc_predict returned a {j.value(cid, 'type')}, expected a torch.Tensor")
    return out


def _mc_sample_values(j, name, out, h, q, n):
    """Each output entry must be h / q times k / n for some number k of samples that kept it."""
    if out.shape != h.shape:
        j.fail(name, f"expected shape {h.shape} (the model's output for x), got {out.shape}")
        return None
    live = h > 1e-3  # away from ReLU's zeros, where float32 and float64 disagree in relative terms
    k = np.round(out[live] * n * q / h[live])
    rebuilt = k * h[live] / (n * q)
    if (np.isfinite(out).all() and (k >= 0).all() and (k <= n).all()
            and np.allclose(out[live], rebuilt, rtol=RTOL, atol=1e-5)):
        j.ok(name)
        return k.astype(int)
    j.fail(name, f"with n_samples = {n} every entry should be (k / {n}) * h / q, with h what the dropout layer receives "
                 "when batch normalization uses its running statistics (evaluation mode) and k the number of samples "
                 "that kept the unit; the values differ: is batch normalization in training mode (model.train() "
                 "switches it to the batch's own statistics)?")
    return None


def _mc_state(j, cid, name):
    if j.value(cid, "unchanged"):
        j.ok(name)
    else:
        j.fail(name, f"the model's parameters or buffers changed ({', '.join(j.value(cid, 'changed', []))}): batch "
                     "normalization in training mode overwrites its running statistics; keep it in evaluation mode")


def _mc_modes(j, cid, name, start_mode):
    modes, names = j.value(cid, "modes", []), j.value(cid, "module_names", [])
    want = start_mode == "train"
    wrong = [n for n, m in zip(names, modes) if m != want]
    if modes and not wrong:
        j.ok(name)
    else:
        j.fail(name, f"the model was entirely in {'training' if want else 'evaluation'} mode before the call; afterwards "
                     f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not: record every module's mode before and "
                     "restore it after (or work on a copy of the model)")


def _mc_fixed_judge(j):
    h, h1 = _mc_hidden(j), _mc_hidden(j, "x1")
    out = _mc_out(j, "values are h / q or 0", "one")
    if out is not None:
        k = _mc_sample_values(j, "values are h / q or 0", out, h, 0.7, 1)
        if k is not None:
            prop.drop_rate(j, "drop rate", k == 0, 0.3)
        _mc_state(j, "one", "model unchanged")
        _mc_modes(j, "one", "modes restored", "eval")
    single = _mc_out(j, "a single example", "single")
    if single is not None:
        _mc_sample_values(j, "a single example", single, h1, 0.7, 1)


def _mc_contract_judge(j):
    h = _mc_hidden(j)
    two = _mc_out(j, "mean over the samples", "two")
    if two is not None:
        k = _mc_sample_values(j, "mean over the samples", two, h, 0.7, 2)
        if k is not None:
            # k = 1 (exactly one of the two samples kept the unit) has probability 2pq with fresh masks, 0 with one mask.
            n, ones = k.size, int((k == 1).sum())
            interval = j.binomial(n, 2 * 0.3 * 0.7)
            if ones in interval:
                j.ok("fresh mask for each sample")
            else:
                j.fail("fresh mask for each sample",
                       f"{prop.pct(ones / n)} of the entries were kept by exactly one of the two samples; with a fresh mask "
                       f"per sample that happens with probability 2pq = {prop.pct(2 * 0.21)} (accepted {interval.describe()}): "
                       "is one mask reused for every sample?")
        rec = j.record("two")
        j.expect("no gradient", rec.get("status") == "ok" and j.value("two", "requires_grad") is False,
                 "the result requires grad: run the samples under torch.no_grad(), since prediction needs no graph")
    many = _mc_out(j, "mean over the samples", "many")
    if many is not None:
        _mc_sample_values(j, "mean over the samples (8 samples)", many, h, 0.7, 8)
    tr = _mc_out(j, "modes restored (from training mode)", "from_train")
    if tr is not None:
        k = _mc_sample_values(j, "values are h / q or 0 at p=0.8", tr, h, 0.2, 1)
        if k is not None:
            prop.drop_rate(j, "drop rate at p=0.8", k == 0, 0.8)
        _mc_modes(j, "from_train", "modes restored (from training mode)", "train")
        _mc_state(j, "from_train", "model unchanged (from training mode)")


# ---------------------------------------------------------------------------------------------
# SequenceDropout: one mask per sequence, made where x lives
# ---------------------------------------------------------------------------------------------
SEQ = (64, 7, 48)  # (B, T, F), all different


@scenario("out[0-9]*")
def seq_scenario(cls, p, x, modes, on="plan", dtype=None, device="cpu"):
    """Trusted: construct ``cls(p)`` and call it on ``x`` (or, with ``on='meta'``, on a data-less tensor of the
    same shape on PyTorch's meta device, with the module moved there) once per mode."""
    import torch
    from torch import nn

    module = cls(p)
    facts = {"is_module": isinstance(module, nn.Module)}
    if not facts["is_module"]:
        facts["type"] = type(module).__name__
        return facts
    if on == "meta":
        module = module.to("meta")
        x = torch.empty(x.shape, device="meta", dtype=getattr(torch, dtype or "float32"))
    else:
        module = module.to(device)
        if dtype:
            x = x.to(getattr(torch, dtype))
    for i, mode in enumerate(modes):
        module.train(mode == "train")
        out = module(x)
        if not isinstance(out, torch.Tensor):
            facts[f"type{i}"] = type(out).__name__
            continue
        facts[f"device{i}"] = out.device.type
        facts[f"dtype{i}"] = str(out.dtype)
        facts[f"shape{i}"] = list(out.shape)
        if on != "meta":
            facts[f"out{i}"] = out.detach()
    return facts


def _seq_plan(calls):
    def build(plan, rng):
        plan.inputs["x"] = rng.uniform(0.5, 2.0, size=SEQ).astype(np.float32)
        sc = "autograde.checks.in_practice:seq_scenario"
        for cid, p, modes, kw in calls:
            plan.call(cid, p, tensor("x"), modes, device=plan_device(), scenario=sc, **kw)
    return build


_seq_fixed_plan = _seq_plan([("meta", 0.3, ["train"], {"on": "meta"}), ("a", 0.3, ["train", "eval"], {}),
                             ("bf16", 0.3, ["train"], {"dtype": "bfloat16"})])
_seq_contract_plan = _seq_plan([("high", 0.8, ["train", "train"], {}), ("low", 0.1, ["train"], {}),
                                ("f64", 0.3, ["train"], {"dtype": "float64"}),
                                ("meta16", 0.8, ["train"], {"on": "meta", "dtype": "float16"}),
                                ("p0", 0.0, ["train"], {})])


def _seq_out(j, name, cid, i=0):
    why = j.problem(cid)
    if why:
        j.fail(name, why.replace(" raised ", " (construction or forward) raised "))
        return None
    if not j.value(cid, "is_module"):
        j.fail(name, "SequenceDropout(p) must be an nn.Module (class SequenceDropout(nn.Module) with super().__init__())")
        return None
    if j.value(cid, f"type{i}"):
        j.fail(name, f"forward returned a {j.value(cid, f'type{i}')}, expected a torch.Tensor")
        return None
    return j.array(cid, f"out{i}")


def _seq_shared(j, name, out):
    """out (B, T, F): the dropped pattern must be the same at every time step."""
    dropped = out == 0
    if (dropped == dropped[:, :1, :]).all():
        j.ok(name)
        return dropped[:, 0, :]
    changes = float((dropped != dropped[:, :1, :]).any(axis=1).mean())
    j.fail(name, f"for {prop.pct(changes)} of the (sequence, feature) pairs the dropped/kept decision changes between "
                 "time steps: Keras' noise_shape=(batch, 1, features) means one draw per (b, f), a mask of shape "
                 "(B, 1, F) broadcast over time")
    return None


def _seq_values(j, out, x, p, suffix, rtol=RTOL):
    m = _seq_shared(j, f"one mask per sequence{suffix}", out)
    if m is not None:
        prop.drop_rate(j, f"drop rate{suffix}", m, p)
    kept = out != 0
    q = 1 - p
    if kept.any() and np.allclose(out[kept], x[kept] / q, rtol=rtol, atol=0):
        j.ok(f"kept values are x / q{suffix}")
    elif kept.any() and np.allclose(out[kept], x[kept], rtol=rtol, atol=0):
        j.fail(f"kept values are x / q{suffix}", "kept values equal x: divide the survivors by q = 1 - p")
    else:
        j.fail(f"kept values are x / q{suffix}", f"entries that survive must equal x / (1 - p) = x / {q:g}")
    return m


def _seq_fixed_judge(j):
    x = j.input_array("x")
    why = j.problem("meta")
    if why and "not implemented yet" not in why:
        j.fail("mask made on x's device",
               "on a tensor on another device (PyTorch's data-less 'meta' device, which stands in for a GPU) the "
               f"forward failed: {why}. Make the mask where x lives: torch.rand(..., device=x.device) or "
               "torch.full(..., device=x.device, dtype=x.dtype); a mask made on the CPU, or moved with .cuda(), only "
               "works on one kind of machine")
    elif why:
        j.fail("mask made on x's device", why)
    elif j.value("meta", "device0") != "meta":
        j.fail("mask made on x's device", f"for an input on the meta device the output came back on {j.value('meta', 'device0')}: "
                                          "return a tensor on x's device")
    else:
        j.ok("mask made on x's device")
    prop.cuda_note(j)
    out = _seq_out(j, "one mask per sequence", "a", 0)
    if out is not None:
        j.expect("output on x's device", j.value("a", "device0") == j.plan.device.split(":")[0],
                 f"expected the output on {j.plan.device}, got {j.value('a', 'device0')}")
        if out.shape != x.shape:
            j.fail("one mask per sequence", f"expected shape {x.shape}, got {out.shape}")
        else:
            _seq_values(j, out, x, 0.3, "")
    ev = _seq_out(j, "evaluation returns x", "a", 1)
    if ev is not None:
        j.expect("evaluation returns x", ev.shape == x.shape and np.array_equal(ev, x),
                 "after .eval() the module must return x unchanged (no mask, no factor)")
    bf = _seq_out(j, "output dtype is x's dtype", "bf16", 0)
    if bf is not None:
        j.expect("output dtype is x's dtype", j.value("bf16", "dtype0") == "torch.bfloat16",
                 f"a bfloat16 input gave a {j.value('bf16', 'dtype0')} output: make the mask with dtype=x.dtype (a float32 "
                 "mask promotes the product to float32)")


def _seq_contract_judge(j):
    x = j.input_array("x")
    why = j.problem("meta16")
    if why:
        j.fail("float16 on another device", f"a float16 input on the meta device failed: {why}. Make the mask with "
                                            "device=x.device and dtype=x.dtype")
    else:
        j.expect("float16 on another device",
                 j.value("meta16", "device0") == "meta" and j.value("meta16", "dtype0") == "torch.float16",
                 f"a float16 input on the meta device gave a {j.value('meta16', 'dtype0')} output on "
                 f"{j.value('meta16', 'device0')}: make the mask with device=x.device and dtype=x.dtype")
    for cid, p in (("high", 0.8), ("low", 0.1)):
        out = _seq_out(j, f"one mask per sequence at p={p}", cid, 0)
        if out is not None and out.shape == x.shape:
            m = _seq_values(j, out, x, p, f" at p={p}")
            if cid == "high" and m is not None:
                _independent(j, "sequences independent", m[0::2], m[1::2], "neighbouring sequences' masks",
                             "one mask seems to be shared by the whole batch: draw (B, 1, F), not (1, 1, F)")
                _independent(j, "features independent", m[:, 0::2], m[:, 1::2], "neighbouring features' masks",
                             "whole sequences are kept or dropped together: draw (B, 1, F), not (B, 1, 1)")
    a, b = _seq_out(j, "fresh mask each call", "high", 0), _seq_out(j, "fresh mask each call", "high", 1)
    if a is not None and b is not None and a.shape == b.shape == x.shape:
        _independent(j, "fresh mask each call", (a == 0)[:, 0, :], (b == 0)[:, 0, :], "two calls' masks",
                     "the same mask comes back on every call (is it cached, for example as a buffer?)")
    p0 = _seq_out(j, "p=0 returns x", "p0", 0)
    if p0 is not None:
        j.expect("p=0 returns x", p0.shape == x.shape and np.allclose(p0, x, rtol=1e-6, atol=0),
                 "SequenceDropout(0.0) in training mode must return x: p = 0 is allowed (0 <= p < 1) and drops nothing")
    f64 = _seq_out(j, "float64", "f64", 0)
    if f64 is not None:
        kept = f64 != 0
        j.expect("float64", j.value("f64", "dtype0") == "torch.float64" and f64.shape == x.shape
                 and np.allclose(f64[kept], x.astype(np.float64)[kept] / 0.7, rtol=1e-12, atol=0),
                 f"a float64 input must give a float64 output with kept values x / q in float64; got {j.value('f64', 'dtype0')}")


# ---------------------------------------------------------------------------------------------
# PortedNet: keep_prob is a keep probability
# ---------------------------------------------------------------------------------------------
def _port_plan(calls):
    def build(plan, rng):
        plan.inputs["x"] = rng.uniform(0.5, 1.5, size=(BATCH, HIDDEN)).astype(np.float32)
        state = _positive_net(plan, rng, "w", HIDDEN, identity_fc1=True)
        sc = "autograde.checks.in_practice:net_scenario"
        for cid, keeps, modes in calls:
            plan.call(cid, [HIDDEN, HIDDEN, HIDDEN] + list(keeps), state, tensor("x"), modes, device=plan_device(),
                      scenario=sc)
    return build


_port_fixed_plan = _port_plan([("inp", (0.7, 1.0), ["train", "eval"]), ("hid", (1.0, 0.2), ["train"])])
_port_contract_plan = _port_plan([("both", (0.9, 0.6), ["train", "train"]), ("default", (), ["train"])])


def _port_rate(j, name, out, keeps, what):
    """The fraction kept must be q_in * q_h; name a swap of keep and drop probabilities."""
    q = keeps[0] * keeps[1]
    p = 1 - q
    if not np.isfinite(out).all():
        j.fail(name, f"with {what} the output contains NaN or inf: a division by zero, 1 / (1 - keep_prob) at "
                     "keep_prob = 1? Survivors are divided by the keep probability")
        return
    dropped = out == 0
    k, n = int(dropped.sum()), dropped.size
    interval = j.binomial(n, p)
    if k in interval:
        j.ok(name)
        return
    seen_keep = 1 - k / n
    hint = ""
    if abs(seen_keep - (1 - keeps[0]) * (1 - keeps[1])) < 0.05:
        hint = (": keep and drop look swapped. keep_prob is TensorFlow 1's probability of KEEPING a unit, while "
                "nn.Dropout(p) takes the probability of dropping it: use nn.Dropout(1 - keep_prob) (keep_prob = 1, "
                "passed as p, drops every unit)")
    elif k == n:
        hint = ": everything was dropped"
    j.fail(name, f"{prop.pct(seen_keep)} of the units survived, but with {what} they should survive with probability "
                 f"{q:g} (accepted dropped fraction {interval.describe()}){hint}")


def _port_kept(j, name, out, x, q):
    if not _shape_ok(j, name, out, x):
        return
    kept = (out != 0) & np.isfinite(out)
    if not kept.any():
        j.fail(name, "no finite value survived to check the scaling")
    elif np.allclose(out[kept], x[kept] / q, rtol=RTOL, atol=0):
        j.ok(name)
    else:
        ratio = float(np.median(out[kept] / x[kept]))
        j.fail(name, f"surviving values should be scaled by 1 / (keep_prob_input * keep_prob_hidden) = {1 / q:.4g}, as "
                     f"tf.nn.dropout scaled by 1 / keep_prob; they are scaled by about {ratio:.4g}"
                     + (" (divided by the drop probability instead of the keep probability?)"
                        if not np.isfinite(ratio) or abs(ratio - 1 / (1 - q)) < 1e-3 * abs(ratio) else ""))


def _port_fixed_judge(j):
    x = j.input_array("x").astype(np.float64)
    _loads(j, "inp")
    t = _net_out(j, "input keep probability", "inp", 0)
    if t is not None:
        _port_rate(j, "input keep probability", t, (0.7, 1.0), "keep_prob_input = 0.7 (and keep_prob_hidden = 1)")
        _port_kept(j, "kept values (input)", t, x, 0.7)
    e = _net_out(j, "eval() gives the deterministic output", "inp", 1)
    if e is not None:
        _eval_output(j, "eval() gives the deterministic output", e, x, 0.7, "after model.eval()")
    h = _net_out(j, "hidden keep probability", "hid", 0)
    if h is not None:
        _port_rate(j, "hidden keep probability", h, (1.0, 0.2), "keep_prob_hidden = 0.2 (and keep_prob_input = 1)")
        _port_kept(j, "kept values (hidden)", h, x, 0.2)


def _port_contract_judge(j):
    x = j.input_array("x").astype(np.float64)
    for cid, keeps, what in (("both", (0.9, 0.6), "keep_prob_input = 0.9 and keep_prob_hidden = 0.6"),
                             ("default", (0.8, 0.5), "the default keep probabilities 0.8 and 0.5")):
        name = "both" if cid == "both" else "default keep probabilities"
        t = _net_out(j, name, cid, 0)
        if t is not None:
            _port_rate(j, name, t, keeps, what)
            _port_kept(j, f"kept values ({cid})", t, x, keeps[0] * keeps[1])
    a, b = _net_out(j, "fresh mask each forward", "both", 0), _net_out(j, "fresh mask each forward", "both", 1)
    if a is not None and b is not None:
        _independent(j, "fresh mask each forward", a == 0, b == 0, "two forward passes' masks",
                     "the same masks come back on every forward pass")


# ---------------------------------------------------------------------------------------------
# train_and_validate: train in training mode, validate in evaluation mode
# ---------------------------------------------------------------------------------------------
@scenario()
def loop_scenario(fn, state, x, y, x_val, y_val, epochs, batch_size, device="cpu"):
    """Trusted: build Linear -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear from ``state``, watch every
    forward pass through hooks on the batch-norm and dropout layers (mode, gradient recording, batch size)
    and on the last layer (the accuracy of a full validation batch), call ``fn`` with an SGD optimizer, and
    record its result and the trained model's evaluation accuracy on x_val."""
    import torch
    from torch import nn

    d_in, h, k = x.shape[1], dict(state)["0.weight"].shape[0], dict(state)["4.weight"].shape[0]
    model = nn.Sequential(nn.Linear(d_in, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, k))
    model.load_state_dict(dict(state))
    model.to(device).train()
    log = {"n": [], "bn_training": [], "drop_training": [], "grad": [], "val_accuracy": []}
    n_val = x_val.shape[0]

    def on_bn(mod, args):
        log["n"].append(int(args[0].shape[0]))
        log["bn_training"].append(bool(mod.training))
        log["grad"].append(bool(torch.is_grad_enabled()))

    def on_drop(mod, args):
        log["drop_training"].append(bool(mod.training))

    per_epoch = -(-x.shape[0] // batch_size)
    train_logits: list = []  # the last training pass's logits, for the gradient its optimizer step should use
    log["batch_in_order"], log["step_ok"] = [], []

    def on_in(mod, args):
        if args[0].shape[0] != n_val:  # a training pass: is it minibatch x[i:i + batch_size], in order?
            i = (len(log["batch_in_order"]) % per_epoch) * batch_size
            log["batch_in_order"].append(bool(torch.equal(args[0].detach(), x[i:i + batch_size])))

    def on_out(mod, args, out):
        if out.shape[0] == n_val:
            log["val_accuracy"].append(float((out.argmax(1) == y_val).float().mean()))
        else:
            train_logits[:] = [out.detach().clone()]

    hooks = [model[1].register_forward_pre_hook(on_bn), model[3].register_forward_pre_hook(on_drop),
             model[4].register_forward_hook(on_out), model[0].register_forward_pre_hook(on_in)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    sgd_step = optimizer.step

    def step(*args, **kwargs):
        """Before each step: is the output bias's gradient that of the cross-entropy of the last training pass on
        its minibatch's labels (mean over the minibatch, or summed), and nothing accumulated from earlier steps?"""
        grad, ok = model[4].bias.grad, False
        if grad is not None and train_logits:
            i = (len(log["step_ok"]) % per_epoch) * batch_size
            logits = train_logits[0]
            yb = y[i:i + batch_size]
            if logits.shape[0] == yb.shape[0]:
                with torch.no_grad():
                    want = (torch.softmax(logits.double(), 1) - nn.functional.one_hot(yb, logits.shape[1]).double()).sum(0)
                    ok = any(bool(torch.allclose(grad.double(), want / d, rtol=1e-4, atol=1e-6)) for d in (len(yb), 1))
        log["step_ok"].append(ok)
        return sgd_step(*args, **kwargs)

    optimizer.step = step
    try:
        result = fn(model, optimizer, x, y, x_val, y_val, epochs, batch_size)
    finally:
        for hk in hooks:
            hk.remove()
    facts = {key: value[:200] for key, value in log.items()}
    facts["type"] = type(result).__name__
    if isinstance(result, (list, tuple)):
        facts["result"] = [float(v) if isinstance(v, float) else None for v in result][:50]
        facts["item_types"] = sorted({"float" if isinstance(v, float) else type(v).__name__ for v in result})
    model.eval()
    with torch.no_grad():
        facts["final_accuracy"] = float((model(x_val).argmax(1) == y_val).float().mean())
    return facts


def _loop_plan(n, n_val, epochs, batch_size):
    def build(plan, rng):
        d, h, k = N_IN, 24, 4
        plan.inputs["x"] = rng.normal(size=(n, d)).astype(np.float32)
        teacher = rng.normal(size=(d, k))
        plan.inputs["y"] = (plan.inputs["x"] @ teacher).argmax(1).astype(np.int64)
        plan.inputs["x_val"] = rng.normal(size=(n_val, d)).astype(np.float32)
        plan.inputs["y_val"] = (plan.inputs["x_val"] @ teacher).argmax(1).astype(np.int64)
        named = {
            "0.weight": (rng.normal(size=(h, d)) / math.sqrt(d)).astype(np.float32),
            "0.bias": np.zeros(h, np.float32),
            "1.weight": np.ones(h, np.float32), "1.bias": np.zeros(h, np.float32),
            "1.running_mean": np.zeros(h, np.float32), "1.running_var": np.ones(h, np.float32),
            "1.num_batches_tracked": np.array(0, dtype=np.int64),
            "4.weight": (rng.normal(size=(k, h)) / math.sqrt(h)).astype(np.float32),
            "4.bias": np.zeros(k, np.float32),
        }
        state = _state_pairs(plan, "w", named)
        plan.info["loop"] = {"n": n, "n_val": n_val, "epochs": epochs, "batch_size": batch_size}
        plan.call("loop", state, tensor("x"), tensor("y", "int64"), tensor("x_val"), tensor("y_val", "int64"), epochs,
                  batch_size, device=plan_device(), scenario="autograde.checks.in_practice:loop_scenario")
    return build


_loop_fixed_plan = _loop_plan(n=96, n_val=50, epochs=3, batch_size=32)
_loop_contract_plan = _loop_plan(n=100, n_val=37, epochs=4, batch_size=24)


def _loop_passes(j):
    """Split the recorded forward passes into training and validation passes; None if the call failed."""
    why = j.problem("loop")
    if why:
        j.fail("runs", why)
        return None
    cfg = j.plan.info["loop"]
    n_val = cfg["n_val"]
    ns = j.value("loop", "n", [])
    bn, drop, grad = j.value("loop", "bn_training", []), j.value("loop", "drop_training", []), j.value("loop", "grad", [])
    passes = list(zip(ns, bn, drop, grad))
    train = [(i, b, d, g) for i, (n, b, d, g) in enumerate(passes) if n != n_val]
    val = [(i, b, d, g) for i, (n, b, d, g) in enumerate(passes) if n == n_val]
    return cfg, train, val


def _loop_steps(j, cfg, want) -> None:
    """One optimizer step per minibatch x[i:i + batch_size], in order, each with the cross-entropy gradient of that
    minibatch (the scenario compares the output bias's gradient at each step with the one the loss implies)."""
    name = "one cross-entropy step per minibatch, in order"
    order, ok = prop.fact(j, "loop", "batch_in_order", list), prop.fact(j, "loop", "step_ok", list)
    if order is None or ok is None or not all(isinstance(v, bool) for v in order + ok):
        j.fail(name, "the grader got no usable record of the training steps (the scenario's facts are missing or malformed)")
    elif len(ok) != want:
        j.fail(name, f"optimizer.step() was called {len(ok)} times; expected one step per minibatch, {want} in all "
                     f"({cfg['epochs']} epochs of ceil({cfg['n']} / {cfg['batch_size']}) minibatches)")
    elif not all(order):
        j.fail(name, f"{order.count(False)} of {len(order)} training passes did not get minibatch x[i:i + batch_size] for "
                     "i = 0, batch_size, 2 * batch_size, ... in that order (shuffled, or a different slicing?)")
    else:
        j.expect(name, all(ok),
                 f"at {ok.count(False)} of {len(ok)} optimizer steps the gradient was not that of the cross-entropy loss of "
                 "that minibatch: call optimizer.zero_grad() before each backward pass (gradients accumulate otherwise) and "
                 "use nn.CrossEntropyLoss() / F.cross_entropy on the logits with the minibatch's labels")


def _loop_judge(j, strict):
    got = _loop_passes(j)
    if got is None:
        return
    cfg, train, val = got
    steps = math.ceil(cfg["n"] / cfg["batch_size"])
    epochs = cfg["epochs"]
    if strict:
        j.expect("number of training steps", len(train) == epochs * steps,
                 f"expected {epochs} epochs of {steps} minibatch steps = {epochs * steps} training forward passes, saw {len(train)}")
    bad_train = [k for k, (_, b, d, _) in enumerate(train) if not (b and d)]
    if not train:
        j.fail("training steps in train mode", "no training forward pass was seen")
    elif bad_train:
        first_epoch = bad_train[0] // steps + 1
        j.fail("training steps in train mode",
               f"{len(bad_train)} of {len(train)} training steps ran in evaluation mode, starting in epoch {first_epoch}: "
               "after validating in model.eval(), call model.train() again before the next epoch's steps (dropout was "
               "off for the rest of training)")
    else:
        j.ok("training steps in train mode")
    bad_val = [k for k, (_, b, d, _) in enumerate(val) if b or d]
    if not val:
        j.fail("validation in eval mode", f"no forward pass on the whole validation set ({cfg['n_val']} examples) was seen")
    elif bad_val:
        j.fail("validation in eval mode",
               f"{len(bad_val)} of {len(val)} validation passes ran in training mode: dropout dropped units and batch "
               "normalization used (and updated) batch statistics while validating. Call model.eval() before validating")
    else:
        j.ok("validation in eval mode")
    result, types = j.value("loop", "result"), j.value("loop", "item_types", [])
    if result is None:
        j.fail("returns one accuracy per epoch", f"train_and_validate returned a {j.value('loop', 'type')}, expected a list of floats")
        return
    if len(result) != epochs or types != ["float"]:
        j.fail("returns one accuracy per epoch", f"expected a list of {epochs} Python floats (one per epoch); got "
                                                 f"{len(result)} items of types {', '.join(types) or 'none'} (use .item())")
        return
    j.ok("returns one accuracy per epoch")
    seen = j.value("loop", "val_accuracy", [])
    j.expect("accuracies are the validation passes' accuracies",
             len(seen) == epochs and np.allclose(result, seen, atol=1e-6),
             "each returned value should be the fraction of x_val classified correctly in that epoch's validation pass")
    if strict:
        _loop_steps(j, cfg, epochs * steps)
        rec = [g for (_, _, _, g) in val]
        j.expect("validation without gradients", bool(val) and not any(rec),
                 "the validation pass recorded gradients: run it under torch.no_grad()")
        final = prop.fact(j, "loop", "final_accuracy", float)
        if final is None:
            j.fail("last accuracy is the final model's", "the trained model's evaluation accuracy was not recorded")
            return
        j.expect("last accuracy is the final model's", abs(result[-1] - final) < 1e-6,
                 f"the last accuracy ({result[-1]:.4f}) should be the trained model's accuracy on x_val in evaluation "
                 f"mode ({final:.4f})")


# ---------------------------------------------------------------------------------------------
# practice questions (chapter 8); the explanations are the chapter's toggled answers
# ---------------------------------------------------------------------------------------------
ANSWERS = [
    ("answer_q1", "b", "keep_prob is the keep probability q, and nn.Dropout takes the drop probability p = 1 - q"),
    ("answer_q2", "a", "Keras' Dropout is inverted dropout: at inference it is the identity and no weight is touched"),
    ("answer_q3", "c", "batch normalization divides by the variance with dropout, sigma^2 / q, and evaluation feeds variance sigma^2"),
    ("answer_q4", "d", "model.train() also switches batch normalization; only the dropout layers should be in training mode"),
    ("answer_q5", "b", "a network that does not overfit gains nothing from dropout, and its noise makes the fit worse"),
]


def _fc_checks(target, bug):
    return [
        Check(f"{target}.fixed", target, _fc_fixed_plan, _fc_fixed_judge,
              f"{bug} repaired: the checkpoint loads; drop rate and kept values h / q at p = 0.3; eval() gives "
              "fc2(relu(fc1(x))); train() after eval() drops again"),
        Check(f"{target}.contract", target, _fc_contract_plan, _fc_contract_judge,
              "p = 0.1 and 0.8, fresh and independent masks, eval() through a parent model, default p = 0.5"),
    ]


CHECKS = [
    Check("train_and_validate.fixed", "train_and_validate", _loop_fixed_plan, lambda j: _loop_judge(j, strict=False),
          "training steps in training mode (every epoch), validation in evaluation mode, one accuracy per epoch"),
    Check("train_and_validate.contract", "train_and_validate", _loop_contract_plan, lambda j: _loop_judge(j, strict=True),
          "sizes that do not divide, the number of steps, no gradients while validating, the last accuracy the final model's"),
    *_fc_checks("Classifier", "F.dropout's training default"),
    *_fc_checks("ScaledMLP", "double scaling"),
    Check("BatchNormMLP.fixed", "BatchNormMLP", _bn_fixed_plan, _bn_fixed_judge,
          "batch norm's running statistics from fc1(x) without dropout; dropout after the activation at p = 0.3; evaluation output"),
    Check("BatchNormMLP.contract", "BatchNormMLP", _bn_contract_plan, _bn_contract_judge,
          "p = 0.1 and 0.8, fresh masks, eval() through a parent model"),
    Check("mc_predict.fixed", "mc_predict", _mc_fixed_plan, _mc_fixed_judge,
          "samples with dropout on and batch normalization on running statistics, a single example, model unchanged, modes restored"),
    Check("mc_predict.contract", "mc_predict", _mc_contract_plan, _mc_contract_judge,
          "the mean of fresh samples, no gradient, modes restored from training mode, p = 0.8"),
    Check("SequenceDropout.fixed", "SequenceDropout", _seq_fixed_plan, _seq_fixed_judge,
          "mask made on x's device (meta tensors) and in x's dtype (bfloat16); one mask per sequence; kept x / q; evaluation returns x"),
    Check("SequenceDropout.contract", "SequenceDropout", _seq_contract_plan, _seq_contract_judge,
          "p = 0.1 and 0.8, independent across sequences and features, fresh each call, float64, float16 on another device"),
    Check("PortedNet.fixed", "PortedNet", _port_fixed_plan, _port_fixed_judge,
          "keep_prob_input and keep_prob_hidden are keep probabilities (each tested with the other at 1); evaluation output"),
    Check("PortedNet.contract", "PortedNet", _port_contract_plan, _port_contract_judge,
          "both keep probabilities below 1, the defaults 0.8 and 0.5, fresh masks"),
] + [
    prop.answer_check(f"{var}.in_practice", var, [letter], f"{hint} (chapter 8, Practice questions)")
    for var, letter, hint in ANSWERS
]
