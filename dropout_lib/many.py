"""Many small MLPs trained side by side as one batched model, so that experiments can afford many seeds.

:class:`ManyMLPs` holds ``M`` independent multilayer perceptrons. Every weight has a leading "model" axis,
and one batched matrix product (``torch.baddbmm``) evaluates all of them at once. Each model has its own
seed (initial weights and minibatch order), its own drop probability ``p`` and its own kind of noise:

- ``"bernoulli"``: inverted dropout, a 0/1 mask with keep probability ``q = 1 - p``, kept units divided by q;
- ``"gaussian"``: Gaussian dropout, multiplicative noise drawn from N(1, p / q) (Srivastava et al. 2014,
  section 10), which has the same mean and variance as inverted Bernoulli dropout's ``m / q``;

applied after every hidden ReLU. Adam's update is elementwise, so training the stack with one optimiser
is exactly training each model alone with its own minibatches (``tests/test_dropout_lib.py`` checks
this against a plain ``nn.Sequential``).

:func:`train_many` trains a stack on a classification (cross-entropy) or regression (half squared error)
problem, with an optional explicit L2 penalty ``weight_decay * sum ||W||^2`` on the weight matrices
(not on the biases: the penalty that chapter 7's MC-dropout derivation uses).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

NOISES = ("bernoulli", "gaussian")


def _per_model(value, m: int, name: str) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * m
    if len(values) != m:
        raise ValueError(f"{name} needs one value per model ({m}), got {len(values)}")
    return values


class ManyMLPs(nn.Module):
    """``len(seeds)`` MLPs of layer sizes ``sizes`` (e.g. ``(64, 100, 10)``), ReLU and dropout after each hidden layer.

    ``p`` and ``noise`` are one value for every model or one per model. Weights are initialised like
    ``nn.Linear`` (uniform in +-1/sqrt(fan_in)), each model from a generator seeded with its seed.
    """

    def __init__(self, seeds: Sequence[int], sizes: Sequence[int], p=0.0, noise="bernoulli"):
        super().__init__()
        self.seeds = [int(s) for s in seeds]
        m = len(self.seeds)
        ps = [float(v) for v in _per_model(p, m, "p")]
        noises = _per_model(noise, m, "noise")
        if any(not 0.0 <= v < 1.0 for v in ps):
            raise ValueError(f"every p must lie in [0, 1), got {ps}")
        if any(k not in NOISES for k in noises):
            raise ValueError(f"noise must be one of {NOISES}, got {noises}")
        self.sizes = tuple(int(s) for s in sizes)
        self.register_buffer("p", torch.tensor(ps).view(m, 1, 1))
        self.register_buffer("gaussian", torch.tensor([k == "gaussian" for k in noises]).view(m, 1, 1))
        # Drawing random numbers dominates the cost of these small models: draw only the kinds in use.
        self._kinds = {k for k, v in zip(noises, ps) if v > 0}
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = 1.0 / math.sqrt(n_in)
            w = torch.stack([(torch.rand(n_in, n_out, generator=g) * 2 - 1) * bound for g in gens])
            b = torch.stack([(torch.rand(1, n_out, generator=g) * 2 - 1) * bound for g in gens])
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    def select(self, indices: Sequence[int]) -> "ManyMLPs":
        """A new stack holding copies of the models at ``indices`` (their weights, p and noise), e.g. to sample
        one model many times without paying for the others."""
        idx = [int(i) for i in indices]
        noises = ["gaussian" if bool(self.gaussian[i]) else "bernoulli" for i in idx]
        out = ManyMLPs([self.seeds[i] for i in idx], self.sizes, [float(self.p[i]) for i in idx], noises)
        with torch.no_grad():
            for mine, theirs in zip(list(out.weights) + list(out.biases), list(self.weights) + list(self.biases)):
                mine.copy_(theirs[idx])
        return out.train(self.training)

    def noise(self, h: torch.Tensor) -> torch.Tensor:
        """Multiplicative noise of h's shape (M, B, H): m / q (Bernoulli) or N(1, p / q) (Gaussian), per model."""
        q = 1.0 - self.p
        bern = (torch.rand_like(h) >= self.p).to(h.dtype) / q if "bernoulli" in self._kinds else None
        gauss = 1.0 + torch.randn_like(h) * torch.sqrt(self.p / q) if "gaussian" in self._kinds else None
        if bern is None and gauss is None:
            return torch.ones_like(h)
        if bern is None or gauss is None:
            return bern if gauss is None else gauss  # a model with p = 0 gets m / q = 1 or 1 + 0 * z = 1 either way
        return torch.where(self.gaussian, gauss, bern)

    def forward(self, x: torch.Tensor, sample: bool | None = None) -> torch.Tensor:
        """Outputs (M, B, out) for x of shape (B, in) (shared by every model) or (M, B, in).

        ``sample`` draws dropout noise; by default it follows ``self.training``.
        """
        sample = self.training if sample is None else sample
        h = x.expand(self.n_models, *x.shape) if x.dim() == 2 else x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
                if sample:
                    h = h * self.noise(h)
        return h

    @torch.no_grad()
    def probs(self, x: torch.Tensor, passes: int = 0) -> torch.Tensor:
        """Class probabilities (M, B, C): without noise (weight scaling) when ``passes == 0``, else the average
        of the softmax over ``passes`` noisy forward passes (MC dropout)."""
        if passes == 0:
            return torch.softmax(self(x, sample=False), dim=-1)
        return torch.stack([torch.softmax(self(x, sample=True), dim=-1) for _ in range(passes)]).mean(0)


def train_many(
    model: ManyMLPs,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    loss: str = "ce",
    weight_decay=0.0,
    cosine: bool = False,
) -> ManyMLPs:
    """Adam on every model at once; model i sees its own minibatch order, drawn from a generator seeded with
    its seed. ``loss`` is ``"ce"`` (y: class labels) or ``"mse"`` (half the squared error, y: (N, out)).
    ``weight_decay`` (one value, or one per model) is lambda in the penalty lambda * sum ||W||^2 added to
    each model's mean loss. With ``cosine`` the learning rate decays to zero on a cosine schedule."""
    if loss not in ("ce", "mse"):
        raise ValueError(f"loss must be 'ce' or 'mse', got {loss!r}")
    lam = torch.tensor([float(v) for v in _per_model(weight_decay, model.n_models, "weight_decay")])
    n = len(x)
    steps_per_epoch = math.ceil(n / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch) if cosine else None
    gens = [torch.Generator().manual_seed(10_000 + s) for s in model.seeds]
    model.train()
    for _ in range(epochs):
        order = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (M, n)
        for start in range(0, n, batch_size):
            idx = order[:, start : start + batch_size]
            out = model(x[idx])
            if loss == "ce":
                per_model = nn.functional.cross_entropy(out.flatten(0, 1), y[idx].flatten(), reduction="none")
                total = per_model.view(idx.shape).mean(1).sum()
            else:
                total = (0.5 * (out - y[idx]) ** 2).sum(-1).mean(1).sum()
            if bool((lam > 0).any()):
                total = total + sum((lam * (w**2).sum(dim=(1, 2))).sum() for w in model.weights)
            opt.zero_grad()
            total.backward()
            opt.step()
            if sched is not None:
                sched.step()
    model.eval()
    return model
