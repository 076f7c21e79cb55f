"""Assignment 08's tasks: for each, the broken original, repairs written differently, and wrong repairs.

The broken originals are read from the solution notebook's locked "as found" cells (grade_id
``found_<target>``), so the tests judge exactly the code the students receive. Every other
implementation is source code defining the task's function or class; a wrong repair names the checks
that must catch it (at least one per task moves the bug elsewhere instead of removing it), and a
correct repair must pass every check of its target.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.implementations.bernoulli_masks import Impl

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "08_in_practice" / "08_in_practice.ipynb"
TARGETS = ("train_and_validate", "Classifier", "ScaledMLP", "BatchNormMLP", "mc_predict", "SequenceDropout", "PortedNet")


def broken_sources() -> dict[str, str]:
    """target -> the code of its locked 'as found' cell in the solution notebook."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    found = {}
    for cell in cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        if gid.startswith("found_"):
            found[gid[len("found_"):]] = "".join(cell["source"])
    return found


def _fixed(target):
    return frozenset({f"{target}.fixed"})


def _contract(target):
    return frozenset({f"{target}.contract"})


def _both(target):
    return frozenset({f"{target}.fixed", f"{target}.contract"})


# --- train_and_validate ---------------------------------------------------------------------------
LOOP = "def train_and_validate(model, optimizer, x, y, x_val, y_val, epochs, batch_size):\n"
STEPS = ("        for i in range(0, len(x), batch_size):\n"
         "            optimizer.zero_grad()\n"
         "            loss = loss_fn(model(x[i:i + batch_size]), y[i:i + batch_size])\n"
         "            loss.backward()\n"
         "            optimizer.step()\n")
LOOPS = [
    Impl("train_then_eval", "train_and_validate", LOOP +
         "    loss_fn = nn.CrossEntropyLoss()\n    history = []\n"
         "    for epoch in range(epochs):\n        model.train()\n" + STEPS +
         "        model.eval()\n"
         "        with torch.no_grad():\n"
         "            history.append((model(x_val).argmax(dim=1) == y_val).float().mean().item())\n"
         "    return history\n"),
    Impl("restore_mode", "train_and_validate", LOOP +
         "    history = []\n"
         "    for _ in range(epochs):\n"
         "        model.train(True)\n"
         "        for start in range(0, x.shape[0], batch_size):\n"
         "            optimizer.zero_grad()\n"
         "            F.cross_entropy(model(x[start:start + batch_size]), y[start:start + batch_size]).backward()\n"
         "            optimizer.step()\n"
         "        was = model.training\n"
         "        model.eval()\n"
         "        try:\n"
         "            with torch.inference_mode():\n"
         "                history.append(float((model(x_val).argmax(1) == y_val).sum()) / len(y_val))\n"
         "        finally:\n"
         "            model.train(was)\n"
         "    return history\n"),
    # wrong: eval() for validation and never train() again: dropout is off from the second epoch on
    Impl("eval_never_back", "train_and_validate", LOOP +
         "    loss_fn = nn.CrossEntropyLoss()\n    history = []\n    model.train()\n"
         "    for epoch in range(epochs):\n" + STEPS +
         "        model.eval()\n"
         "        with torch.no_grad():\n"
         "            history.append((model(x_val).argmax(dim=1) == y_val).float().mean().item())\n"
         "    return history\n", _both("train_and_validate")),
    # wrong: only the dropout layers switched for validation; batch normalization still uses batch statistics
    Impl("dropout_only_eval", "train_and_validate", LOOP +
         "    loss_fn = nn.CrossEntropyLoss()\n    history = []\n"
         "    for epoch in range(epochs):\n        model.train()\n" + STEPS +
         "        for m in model.modules():\n"
         "            if isinstance(m, nn.Dropout):\n                m.eval()\n"
         "        with torch.no_grad():\n"
         "            history.append((model(x_val).argmax(dim=1) == y_val).float().mean().item())\n"
         "    return history\n", _both("train_and_validate")),
    # wrong: no optimizer.zero_grad(), so every step uses the gradients of all earlier minibatches too
    Impl("no_zero_grad", "train_and_validate", LOOP +
         "    loss_fn = nn.CrossEntropyLoss()\n    history = []\n"
         "    for epoch in range(epochs):\n        model.train()\n" + STEPS.replace("            optimizer.zero_grad()\n", "") +
         "        model.eval()\n"
         "        with torch.no_grad():\n"
         "            history.append((model(x_val).argmax(dim=1) == y_val).float().mean().item())\n"
         "    return history\n", _contract("train_and_validate")),
    # wrong: shuffled minibatches (a good idea in practice, but not the contract's fixed order)
    Impl("shuffled", "train_and_validate", LOOP +
         "    loss_fn = nn.CrossEntropyLoss()\n    history = []\n"
         "    for epoch in range(epochs):\n        model.train()\n        order = torch.randperm(len(x))\n"
         "        xs, ys = x[order], y[order]\n" + STEPS.replace("x[i:i", "xs[i:i").replace("y[i:i", "ys[i:i") +
         "        model.eval()\n"
         "        with torch.no_grad():\n"
         "            history.append((model(x_val).argmax(dim=1) == y_val).float().mean().item())\n"
         "    return history\n", _contract("train_and_validate")),
    # wrong: the loss is not cross-entropy (NLL on raw logits, with no log-softmax)
    Impl("nll_on_logits", "train_and_validate", LOOP +
         "    loss_fn = nn.NLLLoss()\n    history = []\n"
         "    for epoch in range(epochs):\n        model.train()\n" + STEPS +
         "        model.eval()\n"
         "        with torch.no_grad():\n"
         "            history.append((model(x_val).argmax(dim=1) == y_val).float().mean().item())\n"
         "    return history\n", _contract("train_and_validate")),
    # wrong: tensors instead of floats
    Impl("returns_tensors", "train_and_validate", LOOP +
         "    loss_fn = nn.CrossEntropyLoss()\n    history = []\n"
         "    for epoch in range(epochs):\n        model.train()\n" + STEPS +
         "        model.eval()\n"
         "        with torch.no_grad():\n"
         "            history.append((model(x_val).argmax(dim=1) == y_val).float().mean())\n"
         "    return history\n", _both("train_and_validate")),
]

# --- Classifier and ScaledMLP ------------------------------------------------------------------------
INIT = ("    def __init__(self, n_in, n_hidden, n_out, p=0.5):\n"
        "        super().__init__()\n"
        "        self.fc1 = nn.Linear(n_in, n_hidden)\n"
        "        self.fc2 = nn.Linear(n_hidden, n_out)\n"
        "        self.p = p\n\n")


def _net(target, key, forward, fails=(), init=INIT):
    return Impl(key, target, f"class {target}(nn.Module):\n" + init + forward, frozenset(fails))


INIT_MODULE = ("    def __init__(self, n_in, n_hidden, n_out, p=0.5):\n"
               "        super().__init__()\n"
               "        self.fc1 = nn.Linear(n_in, n_hidden)\n"
               "        self.drop = nn.Dropout(p)\n"
               "        self.fc2 = nn.Linear(n_hidden, n_out)\n\n")

CLASSIFIERS = [
    _net("Classifier", "training_flag", "    def forward(self, x):\n"
         "        return self.fc2(F.dropout(F.relu(self.fc1(x)), self.p, training=self.training))\n"),
    _net("Classifier", "dropout_module", "    def forward(self, x):\n"
         "        return self.fc2(self.drop(F.relu(self.fc1(x))))\n", init=INIT_MODULE),
    # wrong: a new nn.Dropout made inside forward is always in training mode
    _net("Classifier", "module_in_forward", "    def forward(self, x):\n"
         "        h = F.relu(self.fc1(x))\n"
         "        return self.fc2(nn.Dropout(self.p)(h))\n", _both("Classifier")),
    # wrong: dropout switched off for good
    _net("Classifier", "never_drops", "    def forward(self, x):\n"
         "        return self.fc2(F.dropout(F.relu(self.fc1(x)), self.p, training=False))\n", _both("Classifier")),
    # wrong: a renamed layer, so the trained checkpoint no longer loads
    _net("Classifier", "renamed_layer", "    def forward(self, x):\n"
         "        return self.out(self.drop(F.relu(self.fc1(x))))\n", _both("Classifier"),
         init=INIT_MODULE.replace("self.fc2 = nn.Linear", "self.out = nn.Linear")),
]

SCALED = [
    _net("ScaledMLP", "no_test_factor", "    def forward(self, x):\n"
         "        h = F.relu(self.fc1(x))\n"
         "        if self.training:\n"
         "            keep = (torch.rand_like(h) >= self.p).to(h.dtype)\n"
         "            h = h * keep / (1 - self.p)\n"
         "        return self.fc2(h)\n"),
    _net("ScaledMLP", "dropout_module", "    def forward(self, x):\n"
         "        return self.fc2(self.drop(F.relu(self.fc1(x))))\n", init=INIT_MODULE),
    # wrong: classic dropout in training, the factor kept at test: checkpoints trained with 1 / q still get q
    _net("ScaledMLP", "classic", "    def forward(self, x):\n"
         "        h = F.relu(self.fc1(x))\n"
         "        if self.training:\n"
         "            h = h * (torch.rand_like(h) >= self.p).to(h.dtype)\n"
         "        else:\n"
         "            h = h * (1 - self.p)\n"
         "        return self.fc2(h)\n", _both("ScaledMLP")),
    # wrong: the factor moved from evaluation into training
    _net("ScaledMLP", "factor_in_training", "    def forward(self, x):\n"
         "        h = F.relu(self.fc1(x))\n"
         "        if self.training:\n"
         "            keep = (torch.rand_like(h) >= self.p).to(h.dtype)\n"
         "            h = h * keep\n"
         "        return self.fc2(h)\n", _both("ScaledMLP")),
]

# --- BatchNormMLP -------------------------------------------------------------------------------------
BN_INIT = ("    def __init__(self, n_in, n_hidden, n_out, p=0.5):\n"
           "        super().__init__()\n"
           "        self.fc1 = nn.Linear(n_in, n_hidden)\n"
           "        self.drop = nn.Dropout(p)\n"
           "        self.bn = nn.BatchNorm1d(n_hidden)\n"
           "        self.fc2 = nn.Linear(n_hidden, n_out)\n"
           "        self.p = p\n\n")
BATCHNORMS = [
    _net("BatchNormMLP", "dropout_last", "    def forward(self, x):\n"
         "        return self.fc2(self.drop(F.relu(self.bn(self.fc1(x)))))\n", init=BN_INIT),
    _net("BatchNormMLP", "functional_after_bn", "    def forward(self, x):\n"
         "        h = self.bn(self.fc1(x))\n"
         "        h = F.dropout(h, self.p, training=self.training)\n"
         "        return self.fc2(F.relu(h))\n", init=BN_INIT),
    # wrong: dropout moved to the network's input, which still reaches batch normalization
    _net("BatchNormMLP", "dropout_on_input", "    def forward(self, x):\n"
         "        return self.fc2(F.relu(self.bn(self.fc1(self.drop(x)))))\n", _both("BatchNormMLP"), init=BN_INIT),
    # wrong: dropout removed altogether
    _net("BatchNormMLP", "no_dropout", "    def forward(self, x):\n"
         "        return self.fc2(F.relu(self.bn(self.fc1(x))))\n", _both("BatchNormMLP"), init=BN_INIT),
]

# --- mc_predict ---------------------------------------------------------------------------------------
MC = "def mc_predict(model, x, n_samples):\n"
MC_PREDICTS = [
    Impl("restore_modes", "mc_predict", MC +
         "    modes = {m: m.training for m in model.modules()}\n"
         "    model.eval()\n"
         "    for m in model.modules():\n"
         "        if isinstance(m, nn.Dropout):\n            m.train()\n"
         "    try:\n"
         "        with torch.no_grad():\n"
         "            return torch.stack([model(x) for _ in range(n_samples)]).mean(dim=0)\n"
         "    finally:\n"
         "        for m, mode in modes.items():\n            m.train(mode)\n"),
    Impl("on_a_copy", "mc_predict", MC +
         "    clone = copy.deepcopy(model).eval()\n"
         "    for m in clone.modules():\n"
         "        if isinstance(m, nn.modules.dropout._DropoutNd):\n            m.train()\n"
         "    total = None\n"
         "    with torch.inference_mode():\n"
         "        for _ in range(n_samples):\n"
         "            out = clone(x)\n"
         "            total = out if total is None else total + out\n"
         "    return total / n_samples\n"),
    # wrong: the right modes for sampling, never restored: the model's dropout stays on afterwards
    Impl("not_restored", "mc_predict", MC +
         "    model.eval()\n"
         "    for m in model.modules():\n"
         "        if isinstance(m, nn.Dropout):\n            m.train()\n"
         "    with torch.no_grad():\n"
         "        return torch.stack([model(x) for _ in range(n_samples)]).mean(dim=0)\n", _both("mc_predict")),
    # wrong: everything in evaluation mode: no dropout, so every sample is the same
    Impl("no_dropout", "mc_predict", MC +
         "    was = model.training\n    model.eval()\n"
         "    with torch.no_grad():\n"
         "        out = torch.stack([model(x) for _ in range(n_samples)]).mean(dim=0)\n"
         "    model.train(was)\n    return out\n", _both("mc_predict")),
    # wrong: one mask reused for every sample (the seed is reset before each pass)
    Impl("same_mask", "mc_predict", MC +
         "    modes = {m: m.training for m in model.modules()}\n"
         "    model.eval()\n"
         "    for m in model.modules():\n"
         "        if isinstance(m, nn.Dropout):\n            m.train()\n"
         "    samples = []\n"
         "    with torch.no_grad():\n"
         "        for _ in range(n_samples):\n"
         "            torch.manual_seed(0)\n"
         "            samples.append(model(x))\n"
         "    for m, mode in modes.items():\n        m.train(mode)\n"
         "    return torch.stack(samples).mean(dim=0)\n", _contract("mc_predict")),
]

# --- SequenceDropout ----------------------------------------------------------------------------------
SEQ_HEAD = ("class SequenceDropout(nn.Module):\n"
            "    def __init__(self, p):\n"
            "        super().__init__()\n"
            "        self.p = p\n\n"
            "    def forward(self, x):\n"
            "        if not self.training or self.p == 0:\n"
            "            return x\n"
            "        batch, _, features = x.shape\n")
SEQUENCE = [
    Impl("full_on_device", "SequenceDropout", SEQ_HEAD +
         "        keep = torch.bernoulli(torch.full((batch, 1, features), 1 - self.p, device=x.device, dtype=x.dtype))\n"
         "        return x * keep / (1 - self.p)\n"),
    Impl("rand_like", "SequenceDropout", SEQ_HEAD +
         "        u = torch.rand_like(x[:, :1, :])\n"
         "        return torch.where(u >= self.p, x / (1 - self.p), torch.zeros_like(x))\n"),
    # wrong: rejects p = 0, which the contract allows (0 <= p < 1)
    Impl("rejects_p0", "SequenceDropout", SEQ_HEAD.replace(
        "        self.p = p\n", "        if not 0 < p < 1:\n            raise ValueError('p must lie in (0, 1)')\n        self.p = p\n") +
         "        keep = torch.bernoulli(torch.full((batch, 1, features), 1 - self.p, device=x.device, dtype=x.dtype))\n"
         "        return x * keep / (1 - self.p)\n", _contract("SequenceDropout")),
    # wrong: the mask kept as a buffer so that .to(device) moves it: now it is drawn once and reused
    Impl("cached_buffer", "SequenceDropout",
         "class SequenceDropout(nn.Module):\n"
         "    def __init__(self, p):\n"
         "        super().__init__()\n"
         "        self.p = p\n"
         "        self.register_buffer('keep', None, persistent=False)\n\n"
         "    def forward(self, x):\n"
         "        if not self.training or self.p == 0:\n"
         "            return x\n"
         "        batch, _, features = x.shape\n"
         "        if self.keep is None or self.keep.shape != (batch, 1, features) or self.keep.dtype != x.dtype:\n"
         "            self.keep = torch.bernoulli(torch.full((batch, 1, features), 1 - self.p, device=x.device, dtype=x.dtype))\n"
         "        return x * self.keep / (1 - self.p)\n", _contract("SequenceDropout")),
    # wrong: the mask moved to the GPU by hand: fails on every machine without one (and on the meta device)
    Impl("hard_coded_cuda", "SequenceDropout", SEQ_HEAD +
         "        keep = torch.bernoulli(torch.full((batch, 1, features), 1 - self.p)).cuda()\n"
         "        return x * keep / (1 - self.p)\n", _both("SequenceDropout")),
    # wrong: device fixed, but a fresh mask at every time step
    Impl("per_step", "SequenceDropout", SEQ_HEAD +
         "        keep = torch.bernoulli(torch.full(x.shape, 1 - self.p, device=x.device, dtype=x.dtype))\n"
         "        return x * keep / (1 - self.p)\n", _both("SequenceDropout")),
]

# --- PortedNet ----------------------------------------------------------------------------------------
PORT_INIT = ("class PortedNet(nn.Module):\n"
             "    def __init__(self, n_in, n_hidden, n_out, keep_prob_input=0.8, keep_prob_hidden=0.5):\n"
             "        super().__init__()\n")
PORTED = [
    Impl("one_minus", "PortedNet", PORT_INIT +
         "        self.drop_input = nn.Dropout(1 - keep_prob_input)\n"
         "        self.fc1 = nn.Linear(n_in, n_hidden)\n"
         "        self.drop_hidden = nn.Dropout(1 - keep_prob_hidden)\n"
         "        self.fc2 = nn.Linear(n_hidden, n_out)\n\n"
         "    def forward(self, x):\n"
         "        return self.fc2(self.drop_hidden(F.relu(self.fc1(self.drop_input(x)))))\n"),
    Impl("functional", "PortedNet", PORT_INIT +
         "        self.fc1, self.fc2 = nn.Linear(n_in, n_hidden), nn.Linear(n_hidden, n_out)\n"
         "        self.rates = (1.0 - keep_prob_input, 1.0 - keep_prob_hidden)\n\n"
         "    def forward(self, x):\n"
         "        x = F.dropout(x, self.rates[0], training=self.training)\n"
         "        h = F.dropout(F.relu(self.fc1(x)), self.rates[1], training=self.training)\n"
         "        return self.fc2(h)\n"),
    # wrong: the mask keeps with probability keep_prob, but the survivors are divided by the drop probability
    Impl("divides_by_rate", "PortedNet", PORT_INIT +
         "        self.fc1, self.fc2 = nn.Linear(n_in, n_hidden), nn.Linear(n_hidden, n_out)\n"
         "        self.keep = (keep_prob_input, keep_prob_hidden)\n\n"
         "    def drop(self, h, keep_prob):\n"
         "        if not self.training:\n            return h\n"
         "        mask = (torch.rand_like(h) < keep_prob).to(h.dtype)\n"
         "        return h * mask / (1 - keep_prob)\n\n"
         "    def forward(self, x):\n"
         "        return self.fc2(self.drop(F.relu(self.fc1(self.drop(x, self.keep[0]))), self.keep[1]))\n",
         _both("PortedNet")),
    # wrong: only the input layer's keep probability translated
    Impl("hidden_still_swapped", "PortedNet", PORT_INIT +
         "        self.drop_input = nn.Dropout(1 - keep_prob_input)\n"
         "        self.fc1 = nn.Linear(n_in, n_hidden)\n"
         "        self.drop_hidden = nn.Dropout(keep_prob_hidden)\n"
         "        self.fc2 = nn.Linear(n_hidden, n_out)\n\n"
         "    def forward(self, x):\n"
         "        return self.fc2(self.drop_hidden(F.relu(self.fc1(self.drop_input(x)))))\n", _both("PortedNet")),
]

WRITTEN = LOOPS + CLASSIFIERS + SCALED + BATCHNORMS + MC_PREDICTS + SEQUENCE + PORTED


def originals() -> list[Impl]:
    """The broken originals from the notebook: each must fail both of its task's checks (so an unmodified
    notebook earns nothing)."""
    return [Impl("original", t, src, _both(t)) for t, src in broken_sources().items()]


def all_impls() -> list[Impl]:
    return originals() + WRITTEN


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
