"""Many small networks trained side by side as one batched model.

An experiment with twenty seeds and several arms trains dozens of networks that are each far too small
to keep two CPU cores busy. Trained one after the other they take minutes; stacked, they take seconds.
Every weight here carries a leading *model* axis, and one batched matrix product (``torch.bmm`` /
``torch.baddbmm``) computes a layer of all models at once. Each model keeps its own

- initial weights: those of the unstacked PyTorch network built after ``torch.manual_seed(seed)``, so
  a stacked model starts exactly where its one-at-a-time twin would;
- training data: each model may have its own training split (the same size for every model);
- minibatch order, from its own seeded generator, and its own dropout masks and drop probability.

The loss is the *sum* of the models' mean losses, so each model's gradient is its own, and Adam,
being elementwise, updates each model exactly as if it were trained alone (up to floating-point
summation order). :func:`train_stacked` keeps, per model, the parameters of the epoch with the lowest
validation error (early stopping), like chapter 6's :func:`dropout_lib.rnn_dropout.train_many`.

:class:`StackedMLP` serves chapter 3 (fully connected networks); :class:`StackedCNN` chapter 5 (the
small CNN of 8 x 8 digits with element-wise, spatial or block dropout after each convolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _stack_linear(layers: Sequence[nn.Linear]) -> tuple[nn.Parameter, nn.Parameter]:
    """(M, in, out) weights and (M, 1, out) biases from M nn.Linear layers (weights transposed)."""
    w = torch.stack([layer.weight.detach().T for layer in layers]).contiguous()
    b = torch.stack([layer.bias.detach()[None] for layer in layers]).contiguous()
    return nn.Parameter(w), nn.Parameter(b)


def inverted_mask(shape: tuple[int, ...], p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """An inverted-dropout mask (u >= p) / (1 - p) for M models at once: ``p`` has shape (M,) and the
    mask ``shape`` starts with M. Where p = 1 the mask is all zeros (no division by zero)."""
    view = (-1,) + (1,) * (len(shape) - 1)
    p = p.view(view)
    q = 1 - p
    u = torch.rand(shape, generator=generator)
    return (u >= p).float() / torch.where(q > 0, q, torch.ones_like(q))


class StackedMLP(nn.Module):
    """M fully connected ReLU networks ``sizes[0] -> ... -> sizes[-1]``, with inverted dropout at drop
    probability ``p[m]`` on the outputs of the hidden layers listed in ``dropout_after`` (0 = the first
    hidden layer). Model m is initialised as ``nn.Linear`` layers built in order after
    ``torch.manual_seed(seeds[m])``."""

    def __init__(self, seeds: Sequence[int], sizes: Sequence[int], p: Sequence[float] | float = 0.0,
                 dropout_after: Sequence[int] = (0,)):
        super().__init__()
        per_model = []
        for s in seeds:
            torch.manual_seed(int(s))
            per_model.append([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for j in range(len(sizes) - 1):
            w, b = _stack_linear([layers[j] for layers in per_model])
            self.weights.append(w)
            self.biases.append(b)
        m = len(seeds)
        p_list = [float(p)] * m if isinstance(p, (int, float)) else [float(v) for v in p]
        if len(p_list) != m:
            raise ValueError(f"one p per model: got {len(p_list)} for {m} models")
        self.register_buffer("p", torch.tensor(p_list))
        self.dropout_after = set(dropout_after)
        self.models = m

    def member(self, i: int) -> nn.Sequential:
        """Model i as an ordinary ``nn.Sequential`` of Linear, ReLU and ``nn.Dropout`` layers (a copy)."""
        layers: list[nn.Module] = []
        last = len(self.weights) - 1
        for j in range(last + 1):
            lin = nn.Linear(self.weights[j].shape[1], self.weights[j].shape[2])
            with torch.no_grad():
                lin.weight.copy_(self.weights[j][i].T)
                lin.bias.copy_(self.biases[j][i, 0])
            layers.append(lin)
            if j < last:
                layers.append(nn.ReLU())
                if j in self.dropout_after:
                    layers.append(nn.Dropout(float(self.p[i])))
        return nn.Sequential(*layers).train(self.training)

    def hidden(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """The ReLU output of hidden layer ``upto`` (no dropout), x of shape (M, B, sizes[0])."""
        h = x
        for j in range(upto + 1):
            h = torch.relu(torch.baddbmm(self.biases[j], h, self.weights[j]))
        return h

    def forward(self, x: torch.Tensor, masks: dict[int, torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits (M, B, classes) for inputs (M, B, sizes[0]). In training mode a fresh mask is drawn for
        every dropout layer unless ``masks[j]`` (already scaled by 1/q) is given; in evaluation mode
        dropout is off (inverted dropout's weight scaling)."""
        h = x
        last = len(self.weights) - 1
        for j in range(last):
            h = torch.relu(torch.baddbmm(self.biases[j], h, self.weights[j]))
            if j in self.dropout_after and self.training:
                mask = masks[j] if masks is not None and j in masks else inverted_mask(h.shape, self.p, generator)
                h = h * mask
        return torch.baddbmm(self.biases[last], h, self.weights[last])


@dataclass
class StackedHistory:
    val_err: torch.Tensor  # (epochs, M) validation error after each epoch
    best_epoch: torch.Tensor  # (M,) 1-based epoch of the lowest validation error (the first, on ties)
    best_val: torch.Tensor  # (M,)
    train_loss: torch.Tensor  # (epochs, M) mean training loss over each epoch's minibatches


@torch.no_grad()
def stacked_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each model's classification error in evaluation mode, (M,); x (M, N, ...), y (M, N) or (N,)."""
    was = model.training
    model.eval()
    pred = model(x).argmax(-1)
    model.train(was)
    y = y.expand_as(pred) if y.dim() == 1 else y
    return (pred != y).float().mean(1)


def train_stacked(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    seeds: Sequence[int],
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    after_step: Callable[[nn.Module, int], None] | None = None,
    mask_seed: int = 0,
) -> StackedHistory:
    """Adam on each model's mean cross-entropy, M models at once; x (M, N, ...), y (M, N).

    Model m's minibatch order comes from a generator seeded with ``seeds[m]`` and the epoch, so models
    with the same seed see the same minibatches (a paired comparison). With ``val`` = (x_val, y_val),
    each model's parameters are restored at the end to those of its epoch with the lowest validation
    error. ``after_step(model, step)`` runs after every update (a schedule for the drop rate).
    """
    m, n = x.shape[0], x.shape[1]
    if len(seeds) != m:
        raise ValueError(f"one seed per model: got {len(seeds)} for {m} models")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(mask_seed)
    rows = torch.arange(m)[:, None]
    best = {k: v.detach().clone() for k, v in model.named_parameters()}
    best_val = torch.full((m,), float("inf"))
    best_epoch = torch.zeros(m, dtype=torch.int64)
    curves, losses = [], []
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(100_003 * int(s) + epoch))
                             for s in seeds])
        total, count = torch.zeros(m), 0
        for i in range(0, n, batch_size):
            idx = order[:, i : i + batch_size]
            logits = model(x[rows, idx], generator=gen)
            loss_each = F.cross_entropy(logits.flatten(0, 1), y[rows, idx].flatten(), reduction="none")
            loss_each = loss_each.view(m, -1).mean(1)
            opt.zero_grad()
            loss_each.sum().backward()
            opt.step()
            step += 1
            if after_step is not None:
                after_step(model, step)
            total += loss_each.detach() * idx.shape[1]
            count += idx.shape[1]
        losses.append(total / count)
        if val is not None:
            err = stacked_error(model, *val)
            curves.append(err)
            better = err < best_val
            best_val = torch.where(better, err, best_val)
            best_epoch = torch.where(better, torch.full_like(best_epoch, epoch + 1), best_epoch)
            with torch.no_grad():
                for k, v in model.named_parameters():
                    best[k] = torch.where(better.view(m, *([1] * (v.dim() - 1))), v, best[k])
    if val is not None:
        with torch.no_grad():
            for k, v in model.named_parameters():
                v.copy_(best[k])
    model.eval()
    return StackedHistory(torch.stack(curves) if curves else torch.empty(0, m), best_epoch, best_val, torch.stack(losses))


# ---------------------------------------------------------------------------------------------
# Chapter 5: a small CNN for 8 x 8 digits, M of them at once
# ---------------------------------------------------------------------------------------------
def _grouped_conv(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor, models: int) -> torch.Tensor:
    """A 3 x 3 convolution with padding 1 of M models at once, as one grouped convolution: ``a`` is
    (B, M * C_in, H, W), model m's channels side by side, and ``w`` (M * C_out, C_in, 3, 3) holds the
    models' kernels; with ``groups=M`` model m's output channels read only model m's input channels."""
    return F.conv2d(a, w, b, padding=1, groups=models)


def block_seed_rate(p: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """DropBlock's seed rate gamma = p / b^2 * H W / ((H - b + 1)(W - b + 1)) (chapter 5)."""
    return p * h * w / (b * b * (h - b + 1) * (w - b + 1))


@torch.no_grad()
def feature_mask(shape: tuple[int, int, int, int, int], kind: str, p: torch.Tensor, block_size: int = 3,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """The training-mode dropout mask, already scaled, for the feature maps of m models, ``shape`` =
    (B, m, C, H, W), model j at drop probability p[j]. ``kind`` is 'element' (one draw per unit, scaled
    by 1/q), 'spatial' (one draw per sample and channel, shared over the map, scaled by 1/q) or 'block'
    (DropBlock: seeds at rate gamma over the valid corners, grown into b x b squares, and each model's
    mask renormalised by its kept fraction, the factor numel / kept of chapter 5)."""
    bsz, m, c, h, w = shape
    pm = p.view(1, m, 1, 1, 1)
    if kind in ("element", "spatial"):
        q = 1 - pm
        u = torch.rand(shape if kind == "element" else (bsz, m, c, 1, 1), generator=generator)
        return ((u >= pm).float() / torch.where(q > 0, q, torch.ones_like(q))).expand(shape)
    if kind == "block":
        b = block_size
        seeds = (torch.rand(bsz, m, c, h - b + 1, w - b + 1, generator=generator) < block_seed_rate(pm, b, h, w)).float()
        # Unit (r, s) is dropped when a seed sits at one of the corners r-b+1..r, s-b+1..s: the sum of the
        # b * b shifted copies of the seeds padded by b - 1 finds it, like chapter 5's b x b max-pool (on
        # maps this small, b * b slices are faster than a pooling kernel).
        padded = F.pad(seeds, (b - 1,) * 4)
        covered = sum(padded[..., i : i + h, j : j + w] for i in range(b) for j in range(b))
        keep = (covered == 0).float()
        kept = keep.sum(dim=(0, 2, 3, 4), keepdim=True)
        return keep * ((bsz * c * h * w) / kept.clamp(min=1))
    raise ValueError(f"unknown kind {kind!r}")


class StackedCNN(nn.Module):
    """M copies of chapter 5's SmallCNN: conv 3x3 (1 -> width) -> ReLU -> drop -> conv 3x3 (width ->
    2 width) -> ReLU -> drop -> 2x2 max-pool -> linear (2 width * 16 -> 10), for 8 x 8 inputs. Model m
    drops with ``kinds[m]`` at rate ``p[m]`` (a buffer, so a schedule may change it between steps).
    Model m is initialised as ``nn.Conv2d, nn.Conv2d, nn.Linear`` built in that order after
    ``torch.manual_seed(seeds[m])``. The convolutions of all models run as one grouped convolution."""

    KINDS = ("none", "element", "spatial", "block")

    def __init__(self, seeds: Sequence[int], kinds: Sequence[str], p: Sequence[float], width: int = 16, block_size: int = 3):
        super().__init__()
        if not len(seeds) == len(kinds) == len(p):
            raise ValueError("one seed, kind and p per model")
        for k in kinds:
            if k not in self.KINDS:
                raise ValueError(f"unknown kind {k!r}")
        convs1, convs2, heads = [], [], []
        for s in seeds:
            torch.manual_seed(int(s))
            convs1.append(nn.Conv2d(1, width, 3, padding=1))
            convs2.append(nn.Conv2d(width, 2 * width, 3, padding=1))
            heads.append(nn.Linear(2 * width * 4 * 4, 10))
        cat = lambda convs, attr: nn.Parameter(torch.cat([getattr(c, attr).detach() for c in convs]).contiguous())  # noqa: E731
        self.w1, self.b1 = cat(convs1, "weight"), cat(convs1, "bias")
        self.w2, self.b2 = cat(convs2, "weight"), cat(convs2, "bias")
        self.w3, self.b3 = _stack_linear(heads)
        self.register_buffer("p", torch.tensor([float(v) for v in p]))
        self.kinds = list(kinds)
        self.groups = {k: torch.tensor([i for i, kk in enumerate(self.kinds) if kk == k], dtype=torch.int64)
                       for k in self.KINDS[1:]}
        self.block_size, self.width, self.models = block_size, width, len(seeds)

    def subset(self, models: Sequence[int]) -> "StackedCNN":
        """A new StackedCNN holding copies of the listed models (weights, kinds and rates)."""
        idx = torch.as_tensor(list(models), dtype=torch.int64)
        out = StackedCNN([0] * len(idx), [self.kinds[i] for i in idx.tolist()], self.p[idx].tolist(),
                         width=self.width, block_size=self.block_size)
        w, c2 = self.width, 2 * self.width
        with torch.no_grad():
            out.w1.copy_(self.w1.view(self.models, w, 1, 3, 3)[idx].reshape(-1, 1, 3, 3))
            out.b1.copy_(self.b1.view(self.models, w)[idx].reshape(-1))
            out.w2.copy_(self.w2.view(self.models, c2, w, 3, 3)[idx].reshape(-1, w, 3, 3))
            out.b2.copy_(self.b2.view(self.models, c2)[idx].reshape(-1))
            out.w3.copy_(self.w3[idx])
            out.b3.copy_(self.b3[idx])
        return out.train(self.training)

    def drop(self, a: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Each model's dropout on maps a (B, M, C, H, W); the identity in evaluation mode."""
        if not self.training:
            return a
        bsz, m, c, h, w = a.shape
        with torch.no_grad():
            mask = torch.ones(bsz, m, c, h, w)
            for kind, idx in self.groups.items():
                if len(idx):
                    mask[:, idx] = feature_mask((bsz, len(idx), c, h, w), kind, self.p[idx], self.block_size, generator)
        return a * mask

    def maps1(self, x: torch.Tensor) -> torch.Tensor:
        """First-layer feature maps after the ReLU, (B, M, width, 8, 8), for x (M, B, 64)."""
        m, bsz = x.shape[:2]
        a = x.reshape(m, bsz, 8, 8).transpose(0, 1)  # (B, M, 8, 8): model m's image is input channel m
        return torch.relu(_grouped_conv(a, self.w1, self.b1, m)).view(bsz, m, self.width, 8, 8)

    def from_maps1(self, a: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits (M, B, 10) from first-layer maps (B, M, width, 8, 8), dropout included in training."""
        bsz, m = a.shape[:2]
        a = self.drop(a, generator).reshape(bsz, m * self.width, 8, 8)
        a = torch.relu(_grouped_conv(a, self.w2, self.b2, m)).view(bsz, m, 2 * self.width, 8, 8)
        a = self.drop(a, generator)
        a = a.view(bsz, m * 2 * self.width, 4, 2, 4, 2).amax(dim=(3, 5))  # a 2 x 2 max-pool, stride 2
        a = a.view(bsz, m, -1).transpose(0, 1)  # (M, B, 2 width * 16)
        return torch.baddbmm(self.b3, a, self.w3)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits (M, B, 10) for inputs x (M, B, 64), model m reading x[m]."""
        return self.from_maps1(self.maps1(x), generator)


def linear_rate_schedule(target: Sequence[float] | torch.Tensor, total_steps: int,
                         models: Sequence[int] | None = None) -> Callable[[nn.Module, int], None]:
    """An ``after_step`` hook for :func:`train_stacked`: the drop rate of each model in ``models`` (all
    when None) grows linearly from 0 to ``target[m]``, reaching it at step ``total_steps`` (DropBlock's
    schedule); the other models keep theirs. Set those models' ``p`` to 0 before training: step s
    (1-based) then trains at target * (s - 1) / total_steps."""
    target = torch.as_tensor(target, dtype=torch.float32)
    chosen = None if models is None else torch.as_tensor(list(models), dtype=torch.int64)

    def hook(model: nn.Module, step: int) -> None:
        rate = target * min(1.0, step / total_steps)
        if chosen is None:
            model.p.copy_(rate)
        else:
            model.p[chosen] = rate[chosen]

    return hook


def mean_rate_of_schedule(target: float, total_steps: int) -> float:
    """The drop rate averaged over the training steps of :func:`linear_rate_schedule`: step s (1-based)
    trains at target * (s - 1) / total_steps, so the average is target * (total_steps - 1) / (2 total_steps)."""
    return target * (total_steps - 1) / (2 * total_steps)


__all__ = [
    "StackedMLP", "StackedCNN", "StackedHistory", "train_stacked", "stacked_error", "inverted_mask",
    "feature_mask", "block_seed_rate", "linear_rate_schedule", "mean_rate_of_schedule",
]
