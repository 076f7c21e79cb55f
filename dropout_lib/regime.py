"""Chapters 1 and 4: a regime where dropout visibly works, and many small MLPs trained side by side.

**The data** (:func:`noisy_digits`). scikit-learn's bundled 8x8 digits with the book's fixed test split
(:mod:`dropout_lib.data`), and a fraction ``noise`` of the *other* labels (the ones training and validation
examples are drawn from) replaced by a uniformly drawn different class, once and for all: the
memorisation regime of Arpit et al. (2017). A network that is big enough to fit every training label
fits the wrong ones too, and what it learns from them hurts on new data; the test labels stay clean, so
test error measures what we care about. The validation labels are as noisy as the training labels,
because in practice they come from the same labelling: with symmetric noise of rate ``nu`` among ten
classes a model with clean error ``e`` has expected noisy error ``nu + e * (1 - 10 nu / 9)``, an
increasing function of ``e``, so choosing on noisy validation error still chooses the lower clean error
on average. The chapters' pilot (``benchmarks/pilot_regime.py``) compares this with MNIST-1D, generated
by the ``mnist1d`` package (:func:`mnist1d_pool`, no download).

A run's *seed* draws its training and validation examples from the non-test pool (disjoint from each
other), its initial weights and its minibatch order. Two arms that share a seed share all of these, so
they are compared by the per-seed (paired) difference.

**Many models at once** (:class:`ManyMLPs`, :func:`fit`). M MLPs of one architecture with a leading
"model" axis on every weight, so one batched matrix product (:func:`torch.baddbmm`) runs a step of all of
them. Each model has its own :class:`Arm`: drop probabilities, learning rate, L2 penalty, decoupled weight
decay and max-norm radius. The loss is the sum of the models' own mean losses, so each model's gradient
is its own. The optimizer is PyTorch's own ``torch.optim.AdamW`` (its fused CPU kernel): the models are
stored in one stacked tensor per layer *per group of models with the same learning rate and decay*, each
group a parameter group of the optimizer, and the forward pass concatenates the groups. Adam is
elementwise, so every model is updated exactly as if it were trained alone (``tests/test_dropout_lib.py``
checks batched models against ``nn.Sequential`` networks trained one by one). :func:`choose` picks a
setting on validation data in two stages, and :class:`Table` keeps every finished run so that experiments
that need the same run share it.

**Statistics** (:func:`paired`, :func:`mean_interval`). Arms that share seeds are compared by per-seed
differences. A t interval over the seeds is conditional on the one fixed test set; a two-way bootstrap
that resamples the seeds *and* the test items (the same items for both arms) also covers the test set's
own sampling error. Means of error rates get a t interval unless it would leave [0, 1], and a percentile
bootstrap then.

**Autoencoders** (:func:`fit_autoencoders`): Srivastava et al.'s Figures 7 and 8, one hidden ReLU layer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F

PILOT_FILE = Path(__file__).resolve().parents[1] / "book" / "data" / "pilot_regime.json"
POOL_SEED = 20170101  # the noisy labels of the non-test pool (fixed: the same in every run and chapter)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclass
class Pool:
    """Examples (float32 (n, d)) and labels (int64 (n,)); ``clean`` holds the true labels where known."""

    x: torch.Tensor
    y: torch.Tensor
    clean: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Regime:
    """A pool that training and validation examples are drawn from, and a fixed test set."""

    pool: Pool
    test: Pool
    n_train: int
    n_val: int
    noise: float = 0.0
    name: str = ""

    def indices(self, seed: int, n_train: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training and validation indices into the pool for ``seed``: disjoint, without replacement. The
        validation set does not depend on ``n_train``, and a smaller training set is the beginning of a
        larger one (the sets of a training-set-size sweep are nested)."""
        order = torch.randperm(len(self.pool), generator=torch.Generator().manual_seed(7919 * int(seed) + 1))
        n = self.n_train if n_train is None else n_train
        if n + self.n_val > len(self.pool):
            raise ValueError(f"n_train = {n} and n_val = {self.n_val} need more than the pool's {len(self.pool)} examples")
        return order[self.n_val : self.n_val + n], order[: self.n_val]


def noisy_digits(noise: float = 0.2, n_train: int = 300, n_val: int = 300, n_test: int = 500) -> Regime:
    """The 8x8 digits, the book's fixed test split (clean labels), and a pool of the other images whose
    labels are, each with probability ``noise``, replaced by a uniformly drawn *different* class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from .data import TEST_SEED

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x_pool, x_test, y_pool, y_test = train_test_split(x, y, test_size=n_test, stratify=y, random_state=TEST_SEED)
    rng = np.random.default_rng(POOL_SEED)
    flip = rng.random(len(y_pool)) < noise
    y_noisy = y_pool.copy()
    y_noisy[flip] = (y_pool[flip] + rng.integers(1, 10, int(flip.sum()))) % 10  # a different class, uniformly
    t = torch.from_numpy
    return Regime(Pool(t(x_pool), t(y_noisy), t(y_pool)), Pool(t(x_test), t(y_test), t(y_test)), n_train, n_val, noise,
                  f"digits with {noise:.0%} label noise")


def mnist1d_pool(n: int, seed: int) -> Pool:
    """``n`` MNIST-1D examples (40 values each) from the ``mnist1d`` package's own generator,
    :func:`mnist1d.data.make_dataset`, which builds them from templates in the package: nothing is
    downloaded (the package's ``get_dataset`` would download; it is never called). It reseeds NumPy's and
    Python's global generators with ``seed``."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = n, 1.0, seed
    data = make_dataset(args)
    return Pool(torch.from_numpy(data["x"].astype(np.float32)), torch.from_numpy(data["y"].astype(np.int64)))


def mnist1d(n_train: int = 300, n_val: int = 300, n_pool: int = 2000, n_test: int = 1000) -> Regime:
    """MNIST-1D: a pool for training and validation and a test set, generated from two fixed seeds."""
    pool, test = mnist1d_pool(n_pool, 20200101), mnist1d_pool(n_test, 20200102)
    return Regime(Pool(pool.x, pool.y, pool.y), Pool(test.x, test.y, test.y), n_train, n_val, 0.0, "MNIST-1D")


def pilot() -> dict:
    """The pilot's results (``benchmarks/pilot_regime.py`` writes them to :data:`PILOT_FILE`)."""
    import json

    return json.loads(PILOT_FILE.read_text())


def chosen_noise(results: dict, max_baseline_error: float = 0.25) -> float:
    """The label-noise rate the chapters use, chosen from the pilot's ``results``: among the label-noise
    candidates (hidden dropout only) in which the network without dropout errs on fewer than
    ``max_baseline_error`` of the test images, the one whose gain from dropout has the largest lower
    interval end (seeds and test images resampled)."""
    candidates = [c for c in results["candidates"] if c["noise"] and c["p_input"] == 0
                  and c["test_err_none"] < max_baseline_error]
    return max(candidates, key=lambda c: c["gain_lo_both"])["noise"]


# ---------------------------------------------------------------------------------------------
# Per-model settings
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One model's settings. ``p`` and ``p_input`` are drop probabilities (after each hidden layer, and on
    the inputs). ``l2`` is the coefficient of the penalty (l2 / 2) ||theta||^2 added to the loss (biases
    included, as torch.optim's ``weight_decay`` and the chapter's ``l2_penalty``). ``decay`` is the
    optimizer's ``weight_decay``: decoupled under Adam (AdamW: theta <- theta - lr * decay * theta), added
    to the gradient under SGD. ``max_norm`` is the radius of each hidden unit's incoming weight vector
    (inf: no constraint)."""

    seed: int = 0
    p: float = 0.0
    p_input: float = 0.0
    lr: float = 1e-3
    l2: float = 0.0
    decay: float = 0.0
    max_norm: float = math.inf

    def but(self, **changes) -> "Arm":
        return replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# M MLPs of one architecture
# ---------------------------------------------------------------------------------------------
def _init(sizes: list[int], seed: int, scale: float = 1.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """nn.Linear's default initialisation (uniform on +-1/sqrt(fan_in), weights and biases; times ``scale``)
    from ``seed`` alone, as (in, out) weights: models with the same seed start from the same weights."""
    out = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        g = torch.Generator().manual_seed(100_003 * int(seed) + layer)
        bound = scale / math.sqrt(fan_in)
        out.append(((torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound,
                    (torch.rand(1, fan_out, generator=g) * 2 - 1) * bound))
    return out


class ManyMLPs(nn.Module):
    """M MLPs ``sizes[0] -> ... -> sizes[-1]`` with ReLU hidden layers; model m starts from ``_init(seeds[m])``.

    ``groups`` (one id per model, models of a group contiguous) splits the models into blocks with their own
    parameter tensors, so that an optimizer can give each block its own learning rate; :meth:`layers`
    concatenates them into (M, in, out) weights and (M, 1, out) biases.
    """

    def __init__(self, sizes: list[int], seeds: list[int], groups: list[int] | None = None, init_scale: float = 1.0):
        super().__init__()
        groups = [0] * len(seeds) if groups is None else list(groups)
        if groups != sorted(groups):
            raise ValueError("the models of a group must be contiguous (sort them by group)")
        self.sizes, self.models = list(sizes), len(seeds)
        inits = [_init(sizes, s, init_scale) for s in seeds]
        self.blocks = nn.ModuleList()
        for gid in sorted(set(groups)):
            members = [i for i, g in enumerate(groups) if g == gid]
            block = nn.ParameterList()
            for layer in range(len(sizes) - 1):
                block.append(nn.Parameter(torch.stack([inits[i][layer][0] for i in members])))
                block.append(nn.Parameter(torch.stack([inits[i][layer][1] for i in members])))
            self.blocks.append(block)

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(W (M, in, out), b (M, 1, out)) for each layer], the blocks concatenated along the model axis."""
        n = len(self.sizes) - 1
        if len(self.blocks) == 1:
            b = self.blocks[0]
            return [(b[2 * i], b[2 * i + 1]) for i in range(n)]
        return [(torch.cat([b[2 * i] for b in self.blocks]), torch.cat([b[2 * i + 1] for b in self.blocks]))
                for i in range(n)]

    def forward(self, x: torch.Tensor, p: torch.Tensor | None = None, p_input: torch.Tensor | None = None,
                generator: torch.Generator | None = None, hidden: list | None = None) -> torch.Tensor:
        """Logits (M, B, classes) for ``x`` (M, B, d), or (B, d) shared by every model.

        With ``p`` (M,) (and optionally ``p_input``) this is a training pass, with inverted dropout after
        each hidden layer (and on the inputs); without, evaluation. ``hidden``, if a list, receives each
        hidden layer's ReLU output (before dropout)."""
        m = self.models
        h = x.expand(m, *x.shape) if x.dim() == 2 else x
        if p_input is not None:
            h = h * _mask(h.shape, p_input, generator)
        layers = self.layers()
        for i, (w, b) in enumerate(layers):
            h = torch.baddbmm(b, h, w)
            if i < len(layers) - 1:
                h = torch.relu(h)
                if hidden is not None:
                    hidden.append(h)
                if p is not None:
                    h = h * _mask(h.shape, p, generator)
        return h


    def sequential(self, i: int, p: float = 0.0) -> nn.Sequential:
        """Model ``i`` as an ``nn.Sequential`` (Linear, ReLU, and ``nn.Dropout(p)`` after each hidden layer when
        p > 0): the same function in evaluation mode, as a module of its own."""
        layers: list[nn.Module] = []
        pairs = self.layers()
        for k, (w, b) in enumerate(pairs):
            lin = nn.Linear(w.shape[1], w.shape[2])
            with torch.no_grad():
                lin.weight.copy_(w[i].T)
                lin.bias.copy_(b[i, 0])
            layers.append(lin)
            if k < len(pairs) - 1:
                layers.append(nn.ReLU())
                if p > 0:
                    layers.append(nn.Dropout(p))
        return nn.Sequential(*layers)


def _mask(shape, p: torch.Tensor, generator) -> torch.Tensor:
    """Inverted-dropout masks (u >= p) / q, one p per model (the leading axis); zeros where p = 1."""
    p = p.view(-1, *([1] * (len(shape) - 1)))
    q = 1 - p
    return (torch.rand(shape, generator=generator) >= p) * torch.where(q > 0, 1 / q.clamp_min(1e-12), 0.0)


# ---------------------------------------------------------------------------------------------
# Training many models at once
# ---------------------------------------------------------------------------------------------
@dataclass
class Fit:
    """What :func:`fit` returns for M models, in the order of the arms given.

    ``curves[key]`` is (evaluations, M), recorded after the epochs in ``epochs``, for ``key`` in
    ``train_err``, ``train_loss``, ``val_err``, ``val_loss`` (on each model's own, noisy, labels),
    ``train_clean_err`` (the same predictions against the true labels of its training examples),
    ``test_err`` and ``test_loss``. ``final`` and ``best`` hold the same keys, each (M,), for the last
    epoch's weights and for the evaluation with the lowest validation error (ties: the earlier);
    ``best_epoch`` is that evaluation's epoch (1-based). ``wrong_final`` and ``wrong_best`` (M, n_test)
    say which test examples each model gets wrong, and ``wrong_curve`` the same at every evaluation.
    ``model`` holds the last epoch's weights (model slot ``order[i]`` is arm i)."""

    arms: list[Arm]
    hidden: tuple[int, ...]
    n_train: int
    n_epochs: int
    epochs: list[int]
    curves: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    best: dict[str, np.ndarray]
    best_epoch: np.ndarray
    wrong_final: np.ndarray
    wrong_best: np.ndarray
    wrong_curve: np.ndarray  # (evaluations, M, n_test) bool: the test mistakes at each evaluation
    model: ManyMLPs = field(repr=False)
    order: np.ndarray = field(repr=False)
    seconds: float = 0.0

    def select(self, **where) -> np.ndarray:
        """Indices of the arms whose fields equal ``where`` (e.g. ``p=0.5``), in the order given."""
        return np.array([i for i, a in enumerate(self.arms) if all(getattr(a, k) == v for k, v in where.items())],
                        dtype=np.int64)

    def sequential(self, i: int) -> nn.Sequential:
        """Arm i's network (its last weights) as an ``nn.Sequential`` of Linear, ReLU and ``nn.Dropout(p)``."""
        return self.model.sequential(int(self.order[i]), self.arms[i].p)


def fit(regime: Regime, arms: list[Arm], hidden: list[int] | tuple[int, ...], epochs: int, batch_size: int = 50,
        eval_every: int | None = 1, n_train: int | None = None) -> Fit:
    """Train one MLP per arm (hidden widths ``hidden``), all side by side, with Adam (AdamW when an arm has
    ``decay`` > 0) on minibatches of ``batch_size`` of its own training examples.

    After every ``eval_every`` epochs (None: only after the last) each model is evaluated on its training
    and validation examples and on the test set, and the weights with the lowest validation error so far
    are kept for :attr:`Fit.best`.
    """
    start = time.perf_counter()
    # Models with the same (lr, decay) share parameter tensors and an optimizer parameter group.
    keys = sorted({(a.lr, a.decay) for a in arms})
    order = sorted(range(len(arms)), key=lambda i: (keys.index((arms[i].lr, arms[i].decay)), i))
    slot = np.empty(len(arms), dtype=np.int64)
    slot[order] = np.arange(len(arms))
    sorted_arms = [arms[i] for i in order]
    m = len(arms)
    seeds = [a.seed for a in sorted_arms]
    pool, test = regime.pool, regime.test
    idx = {s: regime.indices(s, n_train) for s in sorted(set(seeds))}
    tr = torch.stack([idx[s][0] for s in seeds])  # (M, n) indices into the pool
    va = torch.stack([idx[s][1] for s in seeds])
    x_tr, y_tr, x_va, y_va = pool.x[tr], pool.y[tr], pool.x[va], pool.y[va]
    y_tr_clean = pool.clean[tr] if pool.clean is not None else y_tr
    n = tr.shape[1]
    groups = [keys.index((a.lr, a.decay)) for a in sorted_arms]
    model = ManyMLPs([pool.x.shape[1], *hidden, int(pool.y.max()) + 1], seeds, groups)
    opt = torch.optim.AdamW([{"params": list(block), "lr": keys[g][0], "weight_decay": keys[g][1]}
                             for g, block in zip(sorted(set(groups)), model.blocks)], fused=True)

    def column(key):
        return torch.tensor([float(getattr(a, key)) for a in sorted_arms])

    p, p_in, l2, c = column("p"), column("p_input"), column("l2"), column("max_norm")
    p_arg = p if bool((p > 0).any()) else None
    p_in_arg = p_in if bool((p_in > 0).any()) else None
    use_l2, use_max = bool((l2 > 0).any()), bool(torch.isfinite(c).any())
    mask_gen = torch.Generator().manual_seed(int(sum(seeds)) * 31 + 5)
    order_gens = {s: torch.Generator().manual_seed(104_729 * int(s) + 3) for s in sorted(set(seeds))}
    rows = torch.arange(m)[:, None]
    params = list(model.parameters())  # block by block; in each block W0, b0, W1, b1, ...
    group_rows = [torch.tensor([i for i, g in enumerate(groups) if g == gid]) for gid in sorted(set(groups))]
    param_rows = [group_rows[b] for b, block in enumerate(model.blocks) for _ in block]
    radius = [c[r].view(-1, 1, 1) for r in group_rows]
    curves: dict[str, list[torch.Tensor]] = {}
    evaluated: list[int] = []
    best_val = torch.full((m,), float("inf"))
    best_epoch = torch.zeros(m, dtype=torch.int64)
    best_params = [t.detach().clone() for t in params]

    @torch.no_grad()
    def record() -> dict[str, torch.Tensor]:
        out = {}
        for name, (x, y) in (("train", (x_tr, y_tr)), ("val", (x_va, y_va)), ("test", (test.x, test.y))):
            logits = model(x)
            yy = y.expand(m, *y.shape) if y.dim() == 1 else y
            out[f"{name}_loss"] = F.cross_entropy(logits.flatten(0, 1), yy.flatten(), reduction="none").view(m, -1).mean(1)
            predicted = logits.argmax(-1)
            out[f"{name}_err"] = (predicted != yy).float().mean(1)
            if name == "train":  # the same predictions against the true labels of the training examples
                out["train_clean_err"] = (predicted != y_tr_clean).float().mean(1)
        out["wrong"] = predicted != test.y  # (M, n_test)
        return out

    every = eval_every or epochs + 1
    for epoch in range(1, epochs + 1):
        perm = {s: torch.randperm(n, generator=g) for s, g in order_gens.items()}
        batches = torch.stack([perm[s] for s in seeds])
        for i in range(0, n, batch_size):
            bi = batches[:, i : i + batch_size]
            logits = model(x_tr[rows, bi], p_arg, p_in_arg, mask_gen)
            loss = F.cross_entropy(logits.flatten(0, 1), y_tr[rows, bi].flatten(), reduction="none").view(m, -1).mean(1)
            if use_l2:  # the explicit penalty (l2 / 2) ||theta||^2 in each model's own loss, biases included
                loss = loss + 0.5 * l2 * sum(t.pow(2).flatten(1).sum(1) for layer in model.layers() for t in layer)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            if use_max:  # project each hidden unit's incoming weights (a column of W) onto the ball
                with torch.no_grad():
                    for block, r in zip(model.blocks, radius):
                        for w in list(block)[0:-2:2]:
                            w.mul_(torch.clamp(r / w.norm(dim=1, keepdim=True).clamp_min(1e-12), max=1.0))
        if epoch % every == 0 or epoch == epochs:
            now = record()
            evaluated.append(epoch)
            for key, v in now.items():
                curves.setdefault(key, []).append(v)
            better = now["val_err"] < best_val
            best_val = torch.where(better, now["val_err"], best_val)
            best_epoch = torch.where(better, torch.full_like(best_epoch, epoch), best_epoch)
            with torch.no_grad():
                for t, bp, r in zip(params, best_params, param_rows):
                    bp.copy_(torch.where(better[r].view(-1, *([1] * (t.dim() - 1))), t, bp))
    final = now
    if len(evaluated) == 1:  # evaluated after the last epoch only: the best weights are the last ones
        best = final
    else:
        with torch.no_grad():
            last = [t.detach().clone() for t in params]
            for bp, t in zip(best_params, params):
                t.copy_(bp)
            best = record()
            for t, v in zip(params, last):  # the model keeps the last epoch's weights
                t.copy_(v)

    def back(v: torch.Tensor) -> np.ndarray:  # from model slots to the order of the arms
        return v.detach().numpy()[slot]

    return Fit(arms=list(arms), hidden=tuple(hidden), n_train=n, n_epochs=epochs, epochs=evaluated,
               curves={k: torch.stack(v).numpy()[:, slot] for k, v in curves.items() if k != "wrong"},
               final={k: back(v) for k, v in final.items() if k != "wrong"},
               best={k: back(v) for k, v in best.items() if k != "wrong"},
               best_epoch=back(best_epoch), wrong_final=back(final["wrong"]), wrong_best=back(best["wrong"]),
               wrong_curve=torch.stack(curves["wrong"]).numpy()[:, slot],
               model=model, order=slot, seconds=time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# A table of runs, and settings chosen on validation
# ---------------------------------------------------------------------------------------------
def _key(arm: Arm, hidden, n_train: int, epochs: int) -> tuple:
    return (tuple(hidden), int(n_train), int(epochs), replace(arm, seed=0))


@dataclass
class Table:
    """Every finished run of a chapter, keyed by (architecture, training-set size, epochs, arm without its
    seed) and seed: the final weights' metrics and test mistakes. Experiments that need the same run
    (the same key and seed) share it instead of training it twice."""

    runs: dict[tuple, dict[int, dict]] = field(default_factory=dict)
    models: int = 0  # how many networks were trained

    def add(self, f: Fit) -> None:
        for i, arm in enumerate(f.arms):
            row = {k: float(v[i]) for k, v in f.final.items()}
            row["wrong"], row["fit"], row["index"] = f.wrong_final[i], f, i
            self.runs.setdefault(_key(arm, f.hidden, f.n_train, f.n_epochs), {})[arm.seed] = row
        self.models += len(f.arms)

    def has(self, arm: Arm, hidden, n_train: int, epochs: int) -> bool:
        return arm.seed in self.runs.get(_key(arm, hidden, n_train, epochs), {})

    def get(self, metric: str, arm: Arm, hidden, n_train: int, epochs: int, seeds) -> np.ndarray:
        """``metric`` of the runs of ``arm`` (its seed ignored) for each of ``seeds``: (len(seeds),), or
        (len(seeds), n_test) for ``metric="wrong"``."""
        runs = self.runs[_key(arm, hidden, n_train, epochs)]
        return np.stack([runs[s][metric] for s in seeds])


    def sequential(self, arm: Arm, hidden, n_train: int, epochs: int, seeds) -> list[nn.Sequential]:
        """The trained networks of ``arm`` for each of ``seeds``, each as an ``nn.Sequential`` (see
        :meth:`ManyMLPs.sequential`)."""
        runs = self.runs[_key(arm, hidden, n_train, epochs)]
        return [runs[s]["fit"].sequential(runs[s]["index"]) for s in seeds]


@dataclass
class Point:
    """One arm of an experiment whose setting (learning rate, penalty, ...) is chosen on validation among
    ``candidates`` (arms without seeds); ``label`` names it."""

    label: object
    candidates: list[Arm]
    hidden: tuple[int, ...]
    epochs: int
    n_train: int


def choose(regime: Regime, table: Table, points: list[Point], tune_seeds, seeds, batch_size: int = 50) -> dict:
    """Choose each point's candidate on validation, then train it with every seed.

    Stage 1 trains every candidate with ``tune_seeds`` and keeps the one with the lowest mean validation
    error (ties: the first listed). Stage 2 trains the chosen one with the rest of ``seeds``. Runs already
    in ``table`` are reused, and all runs that share an architecture, size and epoch count are trained
    side by side in one :func:`fit`. Returns {label: (chosen arm, index in candidates)}; the test set is
    not looked at."""

    def run(jobs):  # jobs: (arm with seed, point)
        groups: dict[tuple, list[Arm]] = {}
        for arm, pt in jobs:
            if not table.has(arm, pt.hidden, pt.n_train, pt.epochs):
                groups.setdefault((pt.hidden, pt.n_train, pt.epochs), [])
                if arm not in groups[(pt.hidden, pt.n_train, pt.epochs)]:
                    groups[(pt.hidden, pt.n_train, pt.epochs)].append(arm)
        for (hidden, n_train, epochs), arms in groups.items():
            table.add(fit(regime, arms, hidden, epochs, batch_size=batch_size, eval_every=None, n_train=n_train))

    run([(c.but(seed=s), pt) for pt in points for c in pt.candidates for s in tune_seeds])
    chosen = {}
    for pt in points:
        val = [table.get("val_err", c, pt.hidden, pt.n_train, pt.epochs, tune_seeds).mean() for c in pt.candidates]
        k = int(np.argmin(val))
        chosen[pt.label] = (pt.candidates[k], k)
    run([(chosen[pt.label][0].but(seed=s), pt) for pt in points for s in seeds])
    return chosen


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
DETECTABLE = 2.8  # (1.96 + 0.84): a true difference of 2.8 standard errors is detected at 5% with 80% power


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a ``level`` interval over seeds of values in [0, 1] (error rates): Student's t, unless its
    ends would leave [0, 1]; then a percentile bootstrap over the seeds, whose ends cannot."""
    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    if 0.0 <= m - half and m + half <= 1.0:
        return m, m - half, m + half
    rng = np.random.default_rng(0)
    means = v[rng.integers(0, len(v), (4000, len(v)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return m, float(lo), float(hi)


@dataclass
class Paired:
    """A paired comparison of two arms that share their seeds: ``a - b`` seed by seed."""

    mean: float
    lo: float  # t interval over the seeds: conditional on the one fixed test set
    hi: float
    sd: float
    n: int
    detectable: float  # the smallest true difference these seeds detect with 80% power
    lo_both: float = math.nan  # seeds and test items resampled together (two-way bootstrap)
    hi_both: float = math.nan

    @property
    def excludes_zero(self) -> bool:
        lo, hi = (self.lo_both, self.hi_both) if math.isfinite(self.lo_both) else (self.lo, self.hi)
        return lo > 0 or hi < 0


def paired(a, b, wrong_a=None, wrong_b=None, level: float = 0.95, boots: int = 2000, seed: int = 0) -> Paired:
    """Compare arm ``a`` with arm ``b`` by per-seed differences ``a - b`` (one value per shared seed).

    The t interval treats the seeds as the only source of randomness, so it is conditional on the one
    test set. With ``wrong_a`` and ``wrong_b`` ((seeds, n_test) bool: which test items each run gets
    wrong) a two-way bootstrap also resamples the test items (the same resample for both arms, so the
    pairing is kept): its interval covers the test set's own sampling error as well."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    out = Paired(float(d.mean()), float(d.mean()) - half, float(d.mean()) + half, sd, n, DETECTABLE * sd / math.sqrt(n))
    if wrong_a is not None:
        diff = np.asarray(wrong_a, dtype=np.float64) - np.asarray(wrong_b, dtype=np.float64)  # (seeds, items)
        rng = np.random.default_rng(seed)
        s_count = np.stack([np.bincount(r, minlength=n) for r in rng.integers(0, n, (boots, n))])
        k = diff.shape[1]
        i_count = np.stack([np.bincount(r, minlength=k) for r in rng.integers(0, k, (boots, k))])
        means = np.einsum("bs,si,bi->b", s_count, diff, i_count) / (n * k)
        out.lo_both, out.hi_both = (float(v) for v in np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))
    return out


# ---------------------------------------------------------------------------------------------
# Autoencoders (Srivastava et al. 2014, section 7.1 and 7.2)
# ---------------------------------------------------------------------------------------------
@dataclass
class Autoencoders:
    model: ManyMLPs
    arms: list[Arm]
    train_mse: np.ndarray  # (M,) reconstruction error on the training images, evaluation mode
    test_mse: np.ndarray

    @torch.no_grad()
    def activations(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden ReLU activations (M, n, hidden) in evaluation mode."""
        hidden: list = []
        self.model(x, hidden=hidden)
        return hidden[0]

    def features(self) -> torch.Tensor:
        """Each hidden unit's incoming weights, (M, hidden, inputs)."""
        return self.model.layers()[0][0].detach().transpose(1, 2)


def fit_autoencoders(x_train: torch.Tensor, x_test: torch.Tensor, arms: list[Arm], hidden: int, epochs: int,
                     batch_size: int = 50, init_scale: float = 1.0) -> Autoencoders:
    """One-hidden-layer ReLU autoencoders ``d -> hidden -> d`` (linear output, mean squared error), one per
    arm, trained side by side with Adam; an arm's ``p`` drops hidden units (inverted dropout). Every model
    sees all of ``x_train``, in an order that depends on its seed."""
    m, (n, d) = len(arms), x_train.shape
    model = ManyMLPs([d, hidden, d], [a.seed for a in arms], init_scale=init_scale)
    opt = torch.optim.Adam(model.parameters(), lr=arms[0].lr, fused=True)
    if len({a.lr for a in arms}) > 1:
        raise ValueError("autoencoders trained together share one learning rate")
    p = torch.tensor([a.p for a in arms])
    gen = torch.Generator().manual_seed(int(sum(a.seed for a in arms)) + 11)
    order_gens = [torch.Generator().manual_seed(104_729 * a.seed + 5) for a in arms]
    for _ in range(epochs):
        batches = torch.stack([torch.randperm(n, generator=g) for g in order_gens])
        for i in range(0, n, batch_size):
            xb = x_train[batches[:, i : i + batch_size]]
            loss = (model(xb, p, None, gen) - xb).pow(2).mean((1, 2)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = [(model(x) - x).pow(2).mean((1, 2)).numpy() for x in (x_train, x_test)]
    return Autoencoders(model, list(arms), *mse)
