"""Correct and buggy implementations of assignment 01's graded functions and class.

Each is source code (so the same text can be run against the checks directly or pasted into a
notebook's solution cell) defining the graded object by its contract name. A buggy one names the
checks that must catch it; a correct one must pass every check.

All three graded objects are deterministic, so each requirement of their contracts has at least one
buggy implementation aimed at it.
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


C_L2 = "l2_penalty.contract"
S_L2 = "l2_penalty.safety"
C_ES = "EarlyStopping.contract"
M_ES = "EarlyStopping.more"
C_MN = "max_norm_.contract"
S_MN = "max_norm_.safety"


def _l2(key, body, fails=()):
    return Impl(key, "l2_penalty", "def l2_penalty(parameters, weight_decay):\n" + body, frozenset(fails))


WD = "    if weight_decay < 0:\n        raise ValueError(f'weight_decay={weight_decay}')\n"

L2 = [
    # --- correct, written differently -------------------------------------------------------------
    _l2("loop", WD + "    total = None\n    for p in parameters:\n        s = (p * p).sum()\n"
        "        total = s if total is None else total + s\n    return 0.5 * weight_decay * total\n"),
    _l2("stack", WD + "    return weight_decay / 2 * torch.stack([p.pow(2).sum() for p in parameters]).sum()\n"),
    _l2("python_sum", WD + "    return sum(p.square().sum() for p in parameters) * (weight_decay / 2)\n"),
    _l2("cat", WD + "    flat = torch.cat([p.reshape(-1) for p in parameters])\n"
        "    return 0.5 * weight_decay * flat.dot(flat)\n"),
    _l2("list_first", WD + "    params = list(parameters)\n"
        "    return weight_decay * 0.5 * sum(torch.linalg.vector_norm(p) ** 2 for p in params)\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _l2("no_half", WD + "    return weight_decay * sum((p * p).sum() for p in parameters)\n", {C_L2, S_L2}),
    _l2("half_twice", WD + "    return 0.25 * weight_decay * sum((p * p).sum() for p in parameters)\n", {C_L2}),
    _l2("weights_only", WD + "    return weight_decay / 2 * sum((p * p).sum() for p in parameters if p.dim() > 1)\n",
        {C_L2}),
    _l2("first_only", WD + "    for p in parameters:\n        return weight_decay / 2 * (p * p).sum()\n", {C_L2}),
    _l2("mean", WD + "    return weight_decay / 2 * sum((p * p).mean() for p in parameters)\n", {C_L2}),
    _l2("norms", WD + "    return weight_decay / 2 * sum(p.norm() for p in parameters)\n", {C_L2}),
    _l2("l1", WD + "    return weight_decay / 2 * sum(p.abs().sum() for p in parameters)\n", {C_L2}),
    _l2("returns_float", WD + "    return weight_decay / 2 * sum(float((p * p).sum()) for p in parameters)\n", {C_L2}),
    _l2("detached", WD + "    total = sum((p * p).sum() for p in parameters)\n"
        "    return torch.tensor(weight_decay / 2 * total.item(), device=total.device)\n", {S_L2}),
    _l2("iterates_twice", WD + "    if not all(isinstance(p, torch.Tensor) for p in parameters):\n"
        "        raise TypeError('tensors only')\n"
        "    total = torch.zeros(())\n    for p in parameters:\n        total = total + (p * p).sum()\n"
        "    return weight_decay / 2 * total\n", {C_L2}),
    _l2("peeks_first", WD + "    first = next(iter(parameters))\n"
        "    total = torch.zeros((), dtype=first.dtype, device=first.device)\n"
        "    for p in parameters:\n        total = total + (p * p).sum()\n    return weight_decay / 2 * total\n", {C_L2}),
    _l2("uses_len", WD + "    n = len(parameters)\n"
        "    return weight_decay / 2 * sum((parameters[i] ** 2).sum() for i in range(n))\n", {C_L2}),
    _l2("squares_in_place", WD + "    total = 0\n    for p in parameters:\n        total = total + p.pow_(2).sum()\n"
        "    return weight_decay / 2 * total\n", {S_L2}),
    _l2("no_valueerror", "    return weight_decay / 2 * sum((p * p).sum() for p in parameters)\n", {C_L2}),
    _l2("float32_cast", WD + "    return weight_decay / 2 * sum((p.float() ** 2).sum() for p in parameters)\n", {S_L2}),
    _l2("ignores_weight_decay", WD + "    return 0.5 * sum((p * p).sum() for p in parameters)\n", {C_L2}),
    _l2("python_zero", WD + "    if weight_decay == 0:\n        return 0.0\n"
        "    return weight_decay / 2 * sum((p * p).sum() for p in parameters)\n", {C_L2}),
]


# --- EarlyStopping --------------------------------------------------------------------------------
def _es(key, init, step, restore, fails=(), extra=""):
    src = (
        "class EarlyStopping:\n"
        "    def __init__(self, patience, min_delta=0.0):\n" + init
        + "    def step(self, val_loss, model):\n" + step
        + "    def restore(self, model):\n" + restore + extra
    )
    return Impl(key, "EarlyStopping", src, frozenset(fails))


INIT = ("        self.patience, self.min_delta = patience, min_delta\n"
        "        self.best_loss, self.best_epoch, self.best_state = float('inf'), None, None\n"
        "        self.calls, self.bad = 0, 0\n")
SAVE_DEEP = "copy.deepcopy(model.state_dict())"


def _step(improved="val_loss < self.best_loss - self.min_delta", save=SAVE_DEEP, reset="self.bad = 0",
          epoch="self.calls", stop="self.bad >= self.patience", best="val_loss", ret=True, every=""):
    return (
        f"        if {improved}:\n"
        f"            self.best_loss, self.best_epoch = {best}, {epoch}\n"
        f"            self.best_state = {save}\n"
        f"            {reset}\n"
        "        else:\n"
        "            self.bad += 1\n"
        f"{every}"
        "        self.calls += 1\n"
        + (f"        return {stop}\n" if ret else "")
    )


# Nothing improved yet (the first losses inf or NaN): nothing saved, and restore leaves the model alone.
RESTORE = "        if self.best_state is not None:\n            model.load_state_dict(self.best_state)\n"
UNGUARDED_RESTORE = "        model.load_state_dict(self.best_state)\n"

ES = [
    # --- correct ------------------------------------------------------------------------------------
    _es("deepcopy_state", INIT, _step(), RESTORE),
    _es("clone_dict", INIT, _step(save="{k: v.detach().clone() for k, v in model.state_dict().items()}"), RESTORE),
    _es("deepcopy_model", INIT, _step(save="copy.deepcopy(model)"),
        "        if self.best_state is not None:\n            model.load_state_dict(self.best_state.state_dict())\n"),
    _es("cpu_numpy", INIT.replace("float('inf')", "math.inf"),
        _step(save="{k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}"),
        "        for k, v in (self.best_state or {}).items():\n"
        "            model.state_dict()[k].copy_(torch.as_tensor(v))\n"),
    _es("counter_in_list", INIT.replace("self.calls, self.bad = 0, 0", "self.history = []\n        self.bad = 0"),
        _step(epoch="len(self.history)").replace("        self.calls += 1\n", "        self.history.append(val_loss)\n"),
        RESTORE),
    # --- buggy --------------------------------------------------------------------------------------
    _es("stops_early", INIT, _step(stop="self.bad >= self.patience - 1"), RESTORE, {C_ES}),
    _es("stops_late", INIT, _step(stop="self.bad > self.patience"), RESTORE, {C_ES}),
    _es("reference_not_copy", INIT, _step(save="model.state_dict()"), RESTORE, {C_ES}),
    _es("shallow_dict_copy", INIT, _step(save="dict(model.state_dict())"), RESTORE, {C_ES}),
    _es("ignores_min_delta", INIT, _step(improved="val_loss < self.best_loss"), RESTORE, {M_ES}),
    _es("ties_improve", INIT, _step(improved="val_loss <= self.best_loss - self.min_delta"), RESTORE, {C_ES}),
    _es("never_resets", INIT, _step(reset="pass"), RESTORE, {C_ES}),
    _es("restores_nothing", INIT, _step(), "        pass\n", {C_ES}),
    _es("saves_every_call", INIT, _step(every=f"        self.best_state = {SAVE_DEEP}\n"), RESTORE, {C_ES}),
    _es("one_based_epoch", INIT, _step(epoch="self.calls + 1"), RESTORE, {C_ES}),
    _es("best_is_minimum", INIT,
        _step(every="            self.best_loss = min(self.best_loss, val_loss)\n"), RESTORE, {M_ES}),
    _es("returns_none", INIT, _step(ret=False), RESTORE, {C_ES}),
    _es("first_call_always_improves", INIT.replace("float('inf')", "None"),
        _step(improved="self.best_loss is None or val_loss < self.best_loss - self.min_delta"), RESTORE, {C_ES, M_ES}),
    _es("nan_improves", INIT, _step(improved="not val_loss >= self.best_loss - self.min_delta"), RESTORE, {C_ES, M_ES}),
    _es("restore_without_guard", INIT, _step(), UNGUARDED_RESTORE, {M_ES}),
    _es("weight_only", INIT, _step(save="model.weight.detach().clone()"),
        "        with torch.no_grad():\n            model.weight.copy_(self.best_state)\n", {C_ES}),
]


# --- max_norm_ --------------------------------------------------------------------------------------
def _mn(key, body, fails=()):
    return Impl(key, "max_norm_", "def max_norm_(weight, max_norm):\n" + body, frozenset(fails))


MN_CHECK = "    if max_norm <= 0:\n        raise ValueError(f'max_norm={max_norm}')\n"

MN = [
    # --- correct ------------------------------------------------------------------------------------
    _mn("clamp_scale", MN_CHECK + "    with torch.no_grad():\n"
        "        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.mul_((max_norm / norms.clamp(min=max_norm)))\n    return weight\n"),
    _mn("renorm", MN_CHECK + "    with torch.no_grad():\n"
        "        torch.renorm(weight, p=2, dim=0, maxnorm=max_norm, out=weight)\n    return weight\n"),
    _mn("where_copy", MN_CHECK + "    with torch.no_grad():\n"
        "        norms = torch.linalg.vector_norm(weight, dim=1, keepdim=True)\n"
        "        scaled = weight * (max_norm / torch.where(norms > 0, norms, torch.ones_like(norms)))\n"
        "        weight.copy_(torch.where(norms > max_norm, scaled, weight))\n    return weight\n"),
    _mn("data_loop", MN_CHECK + "    w = weight.data\n    for i in range(w.shape[0]):\n"
        "        n = w[i].norm()\n        if n > max_norm:\n            w[i] *= max_norm / n\n    return weight\n"),
    _mn("keras_style", MN_CHECK + "    with torch.no_grad():\n"
        "        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.mul_(norms.clamp(max=max_norm) / (norms + 1e-12))\n"
        "        return weight\n"),
    # --- buggy --------------------------------------------------------------------------------------
    _mn("columns", MN_CHECK + "    with torch.no_grad():\n        norms = weight.norm(dim=0, keepdim=True)\n"
        "        weight.mul_(max_norm / norms.clamp(min=max_norm))\n    return weight\n", {C_MN}),
    _mn("all_rows", MN_CHECK + "    with torch.no_grad():\n        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.mul_(max_norm / norms)\n    return weight\n", {C_MN}),
    _mn("not_in_place", MN_CHECK + "    norms = weight.norm(dim=1, keepdim=True)\n"
        "    return (weight * (max_norm / norms.clamp(min=max_norm))).detach()\n", {C_MN}),
    _mn("global_norm", MN_CHECK + "    with torch.no_grad():\n        n = weight.norm()\n"
        "        if n > max_norm:\n            weight.mul_(max_norm / n)\n    return weight\n", {C_MN}),
    _mn("to_one", MN_CHECK + "    with torch.no_grad():\n        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.copy_(torch.where(norms > max_norm, weight / norms, weight))\n    return weight\n", {C_MN}),
    _mn("squared_scale", MN_CHECK + "    with torch.no_grad():\n        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.copy_(torch.where(norms > max_norm, weight * max_norm / norms ** 2, weight))\n"
        "    return weight\n", {C_MN}),
    _mn("squared_compare", MN_CHECK + "    with torch.no_grad():\n        sq = (weight ** 2).sum(dim=1, keepdim=True)\n"
        "        weight.copy_(torch.where(sq > max_norm, weight * max_norm / sq.sqrt(), weight))\n"
        "    return weight\n", {C_MN}),
    _mn("no_grad_missing", MN_CHECK + "    norms = weight.norm(dim=1, keepdim=True)\n"
        "    weight.mul_((max_norm / norms.clamp(min=max_norm)).detach())\n    return weight\n", {C_MN}),
    _mn("no_valueerror", "    with torch.no_grad():\n        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.mul_(max_norm / norms.clamp(min=max_norm))\n    return weight\n", {C_MN}),
    _mn("nan_for_zero_row", MN_CHECK + "    with torch.no_grad():\n        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.div_(norms).mul_(norms.clamp(max=max_norm))\n    return weight\n", {S_MN}),
    _mn("float32_copy", MN_CHECK + "    with torch.no_grad():\n        w = weight.float()\n"
        "        norms = w.norm(dim=1, keepdim=True)\n        w.mul_(max_norm / norms.clamp(min=max_norm))\n"
        "    return w\n", {S_MN}),
    _mn("epsilon_too_large", MN_CHECK + "    with torch.no_grad():\n        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.copy_(torch.where(norms > max_norm, weight * max_norm / (norms + 1e-3), weight))\n"
        "    return weight\n", {C_MN}),
    _mn("clips_entries", MN_CHECK + "    with torch.no_grad():\n        weight.clamp_(-max_norm, max_norm)\n"
        "    return weight\n", {C_MN}),
    _mn("returns_none", MN_CHECK + "    with torch.no_grad():\n        norms = weight.norm(dim=1, keepdim=True)\n"
        "        weight.mul_(max_norm / norms.clamp(min=max_norm))\n", {C_MN}),
]

ALL = L2 + ES + MN

# Practice questions: the accepted answers and a few wrong ones.
ANSWERS = {"answer_q1": "b", "answer_q2": "c", "answer_q3": 3, "answer_q4": "a", "answer_q5": "b"}
WRONG_ANSWERS = {"answer_q1": "a", "answer_q2": "a", "answer_q3": 6, "answer_q4": "b", "answer_q5": "a"}


def load(impl: Impl):
    """The function or class an implementation defines, compiled in a namespace with torch, numpy, copy, math."""
    import copy
    import math

    import numpy as np
    import torch

    ns = {"torch": torch, "np": np, "copy": copy, "math": math}
    exec(compile(impl.source, f"<impl {impl.target}:{impl.key}>", "exec"), ns)
    return ns[impl.target]
