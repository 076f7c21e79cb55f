"""Training loops and statistics the chapters' experiments share.

Every experiment in the book runs several seeds and reports a mean with a 95% confidence interval
(Student's t over seeds), on a held-out test split, with widths matched between the arms compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from scipy import stats
from torch import nn

from .data import Split


def mlp(in_dim: int, hidden: int, out_dim: int, depth: int = 2, p_hidden: float = 0.0, p_input: float = 0.0) -> nn.Sequential:
    """An MLP with ``depth`` hidden ReLU layers of width ``hidden`` and (inverted) dropout after each."""
    layers: list[nn.Module] = [nn.Dropout(p_input)] if p_input > 0 else []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if p_hidden > 0:
            layers.append(nn.Dropout(p_hidden))
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    train_err: list[float] = field(default_factory=list)
    val_err: list[float] = field(default_factory=list)
    test_err: list[float] = field(default_factory=list)


@torch.no_grad()
def error(model: nn.Module, split: Split) -> float:
    """Classification error in evaluation mode (restores the previous mode)."""
    was = model.training
    model.eval()
    err = (model(split.x).argmax(1) != split.y).float().mean().item()
    model.train(was)
    return float(err)


def train(
    model: nn.Module,
    train_split: Split,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    val: Split | None = None,
    test: Split | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    after_epoch: Callable[[nn.Module, History], bool] | None = None,
) -> History:
    """Adam on cross-entropy; records errors each epoch. ``after_step`` runs after every update (max-norm);
    ``after_epoch`` may return True to stop (early stopping)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    hist = History()
    n = len(train_split)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(train_split.x[idx]), train_split.y[idx])
            loss.backward()
            opt.step()
            if after_step:
                after_step(model)
            total += loss.item() * len(idx)
        hist.train_loss.append(total / n)
        hist.train_err.append(error(model, train_split))
        if val is not None:
            hist.val_err.append(error(model, val))
        if test is not None:
            hist.test_err.append(error(model, test))
        if after_epoch and after_epoch(model, hist):
            break
    return hist


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of a ``level`` confidence interval (Student's t over independent runs)."""
    v = np.asarray(list(values), dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def fmt_ci(values: Iterable[float], scale: float = 100.0, unit: str = "%") -> str:
    """'12.3% (95% CI 11.0 to 13.6)' for prose and tables."""
    m, lo, hi = mean_ci(values)
    return f"{m * scale:.1f}{unit} (95% CI {lo * scale:.1f} to {hi * scale:.1f})"
