"""Chapter 6 (dropout for recurrent networks): a synthetic language and many small RNN language models at once.

The chapter compares five ways of putting dropout into a recurrent network over several seeds and
several drop probabilities. Training 80 small models one after the other would take minutes on a
CPU, so :class:`ManyRNNs` stacks them: every weight carries a leading "model" axis and one batched
matrix product (``torch.bmm``) steps all models at once. Each model has its own seed (initial
weights, minibatch order) and its own dropout configuration, a :class:`Sites` row:

- ``px``, ``ph``, ``py``: drop probabilities on the inputs (embeddings), on the previous hidden state
  where it enters the recurrence, and on the outputs (before the softmax layer);
- ``locked``: one mask per sequence reused at every time step (Gal and Ghahramani 2016) instead of
  a fresh mask at every step;
- ``pz``: the zoneout probability (Krueger et al. 2016, who write it z), the probability that a
  hidden unit KEEPS its previous value;
- ``pw``: weight drop (Merity et al. 2017), DropConnect on the hidden-to-hidden matrix, one mask per
  forward pass shared by every sequence and every step.

The recurrence of model ``m`` (an Elman tanh RNN, the cell of assignment 6) in training is

    x~_t = m^x_t * e(x_t) / (1 - px)          (m^x_t = m^x for every t when locked)
    h~   = m^h_t * h_{t-1} / (1 - ph)
    c_t  = tanh(x~_t W_ih + b + h~ (M^w * W_hh / (1 - pw)))
    h_t  = d_t * h_{t-1} + (1 - d_t) * c_t    (zoneout mask d_t ~ Bernoulli(pz) elementwise)
    y_t  = m^y_t * h_t / (1 - py)  ->  logits = y_t W_out + b_out

and at evaluation every mask is replaced by its expectation: no dropout, no weight drop, and
``h_t = pz * h_{t-1} + (1 - pz) * c_t``.

The module also generates a delayed-recall task (:func:`recall_task`): a key symbol at the first step,
``delay`` random distractor symbols, and a query whose target is the key. Only the query position has
a target (the others are :data:`IGNORE`), so a model must carry the key through ``delay`` steps of its
recurrence; the chapter uses it to isolate dropout on the recurrent state.

Evaluation is deterministic by default (every mask replaced by its expectation, inverted dropout's
weight scaling). :func:`mc_probabilities` evaluates instead by Monte Carlo: it averages the predicted
probabilities over sampled training-mode masks (one mask per sequence for a locked model), the
evaluation Gal and Ghahramani also report. :func:`per_item_scores` gives each model's loss and
correctness per test sequence, for intervals that include the test set's sampling error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

LETTERS = "abcdefgh"
VOCAB = LETTERS + " "

# Fixed seeds: the language and its three text samples are the same in every run of the chapter;
# seeds in the experiment vary only the models (initial weights, minibatch order, masks).
LANGUAGE_SEED = 1
TRAIN_SEED, VAL_SEED, TEST_SEED = 10, 11, 12


# ---------------------------------------------------------------------------------------------
# The synthetic language
# ---------------------------------------------------------------------------------------------
@dataclass
class WordLanguage:
    """Words over 8 letters, chained by a sparse random Markov chain: each word has a few successors."""

    words: list[str]
    successors: np.ndarray  # (n_words, k) word indices
    probs: np.ndarray  # (n_words, k) transition probabilities

    def sample(self, n_chars: int, seed: int) -> str:
        rng = np.random.default_rng(seed)
        w = int(rng.integers(len(self.words)))
        parts, n = [], 0
        while n < n_chars:
            parts.append(self.words[w] + " ")
            n += len(parts[-1])
            w = int(self.successors[w][rng.choice(self.successors.shape[1], p=self.probs[w])])
        return "".join(parts)[:n_chars]


def word_language(n_words: int = 24, successors: int = 3, seed: int = LANGUAGE_SEED) -> WordLanguage:
    rng = np.random.default_rng(seed)
    words: set[str] = set()
    while len(words) < n_words:
        words.add("".join(rng.choice(list(LETTERS), int(rng.integers(2, 6)))))
    ordered = sorted(words)
    succ = np.stack([rng.choice(n_words, successors, replace=False) for _ in range(n_words)])
    probs = np.stack([rng.dirichlet(np.ones(successors)) for _ in range(n_words)])
    return WordLanguage(ordered, succ, probs)


@dataclass
class TextSplit:
    x: torch.Tensor  # (n, T) int64 character ids
    y: torch.Tensor  # (n, T) the next character of each position

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Corpus:
    language: WordLanguage
    train: TextSplit
    val: TextSplit
    test: TextSplit
    text: dict = field(default_factory=dict)


def encode(text: str, steps: int) -> TextSplit:
    """Cut ``text`` into non-overlapping sequences of ``steps`` characters, targets shifted by one."""
    ids = torch.tensor([VOCAB.index(c) for c in text])
    n = (len(ids) - 1) // steps
    return TextSplit(ids[: n * steps].view(n, steps), ids[1 : n * steps + 1].view(n, steps))


def corpus(n_train: int = 2400, n_val: int = 2400, n_test: int = 4800, steps: int = 24) -> Corpus:
    """Train, validation and test text from one fixed language; the test text is never used for choices."""
    lang = word_language()
    text = {"train": lang.sample(n_train, TRAIN_SEED), "val": lang.sample(n_val, VAL_SEED), "test": lang.sample(n_test, TEST_SEED)}
    return Corpus(lang, encode(text["train"], steps), encode(text["val"], steps), encode(text["test"], steps), text)


# ---------------------------------------------------------------------------------------------
# A delayed-recall task: remember one symbol for ``delay`` steps
# ---------------------------------------------------------------------------------------------
IGNORE = -100  # target of a position without a target (PyTorch's default ignore_index)
RECALL_SEEDS = {"train": 20, "val": 21, "test": 22}


@dataclass
class RecallTask:
    train: TextSplit
    val: TextSplit
    test: TextSplit
    keys: int
    distractors: int
    delay: int

    @property
    def vocab(self) -> int:
        return self.keys + self.distractors + 1


def recall_split(n: int, delay: int, keys: int, distractors: int, seed: int) -> TextSplit:
    """``n`` sequences of ``delay + 1`` ids: x_0 is a key in [0, keys), x_1 .. x_{delay-1} are distractors
    in [keys, keys + distractors), x_delay is the query id ``keys + distractors``. The only target is
    at the query position and equals the key, ``delay`` recurrent steps after it was seen."""
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, delay + 1, dtype=torch.int64)
    x[:, 0] = torch.randint(0, keys, (n,), generator=g)
    x[:, 1:delay] = torch.randint(keys, keys + distractors, (n, delay - 1), generator=g)
    x[:, delay] = keys + distractors
    y = torch.full_like(x, IGNORE)
    y[:, delay] = x[:, 0]
    return TextSplit(x, y)


def recall_task(n_train: int = 256, n_val: int = 512, n_test: int = 2048, delay: int = 15, keys: int = 8,
                distractors: int = 4) -> RecallTask:
    """Train, validation and test sequences of the delayed-recall task, each split from its own fixed seed."""
    splits = {k: recall_split(n, delay, keys, distractors, RECALL_SEEDS[k])
              for k, n in (("train", n_train), ("val", n_val), ("test", n_test))}
    return RecallTask(splits["train"], splits["val"], splits["test"], keys, distractors, delay)


# ---------------------------------------------------------------------------------------------
# Dropout configurations
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sites:
    """Where one model drops, and how; all probabilities default to 0 (no dropout)."""

    px: float = 0.0
    ph: float = 0.0
    py: float = 0.0
    pz: float = 0.0
    pw: float = 0.0
    locked: bool = False


def variant(name: str, p: float) -> Sites:
    """The five schemes of the chapter (and 'none') at drop (or zoneout) probability ``p``."""
    return {
        "none": Sites(),
        "naive": Sites(px=p, ph=p, py=p),  # fresh masks at every step, recurrent state included
        "between layers": Sites(px=p, py=p),  # Zaremba et al. 2014: never on the recurrent path
        "locked": Sites(px=p, ph=p, py=p, locked=True),  # Gal and Ghahramani 2016: one mask per sequence
        "zoneout": Sites(pz=p),  # Krueger et al. 2016: keep the previous value with probability p
        "weight drop": Sites(pw=p),  # Merity et al. 2017: DropConnect on W_hh
    }[name]


def config(sites: list[Sites]) -> dict[str, torch.Tensor]:
    """Stack a list of per-model :class:`Sites` into (M,) tensors."""
    cfg = {k: torch.tensor([getattr(s, k) for s in sites], dtype=torch.float32) for k in ("px", "ph", "py", "pz", "pw")}
    cfg["locked"] = torch.tensor([s.locked for s in sites])
    return cfg


# ---------------------------------------------------------------------------------------------
# Many RNN language models at once
# ---------------------------------------------------------------------------------------------
def _keep(u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Inverted-dropout mask from uniforms ``u``: (u >= p) / (1 - p), with p broadcast per model; 0 where p = 1."""
    q = 1 - p
    return (u >= p).float() / torch.where(q > 0, q, torch.ones_like(q))


def draw_masks(cfg: dict, batch: int, steps: int, emb: int, hidden: int, generator=None) -> dict[str, torch.Tensor]:
    """Every random draw of one training forward pass, for M models: masks already scaled by 1/q.

    Shapes: ``mx`` (M, B, T, E), ``mh`` and ``my`` (M, B, T, H), ``z`` (M, B, T, H) in {0, 1},
    ``mw`` (M, H, H). A locked model's ``mx``, ``mh``, ``my`` are constant along T. ``z`` is the zoneout
    mask (the chapter's d_t, 1 where a unit keeps its previous value).
    """
    m = cfg["px"].shape[0]

    def uniforms(width, p, steps_drawn):
        """Uniforms for the models with p > 0 only (the others get 1.0, which every p = 0 keeps)."""
        u = torch.ones(m, batch, steps_drawn, width)
        on = (p > 0).nonzero().flatten()
        if len(on):
            u[on] = torch.rand(len(on), batch, steps_drawn, width, generator=generator)
        return u

    def sequence_mask(width, p):
        u = uniforms(width, p, steps)
        # A locked model reuses its first step's draws at every step; the others draw afresh at each step.
        u = torch.where(cfg["locked"].view(m, 1, 1, 1), u[:, :, :1], u)
        return _keep(u, p.view(m, 1, 1, 1))

    return {
        "mx": sequence_mask(emb, cfg["px"]),
        "mh": sequence_mask(hidden, cfg["ph"]),
        "my": sequence_mask(hidden, cfg["py"]),
        "z": (uniforms(hidden, cfg["pz"], steps) < cfg["pz"].view(m, 1, 1, 1)).float(),
        "mw": _keep(torch.rand(m, hidden, hidden, generator=generator), cfg["pw"].view(m, 1, 1)),
    }


class ManyRNNs(nn.Module):
    """M independent Elman (tanh) RNN language models with a leading model axis on every weight."""

    def __init__(self, seeds: list[int], vocab: int = len(VOCAB), emb: int = 16, hidden: int = 48):
        super().__init__()
        m = len(seeds)

        def init(shape, scale, stream):
            draws = [torch.rand(shape, generator=torch.Generator().manual_seed(1000 * int(s) + stream)) for s in seeds]
            return nn.Parameter((torch.stack(draws) * 2 - 1) * scale)

        self.emb = init((vocab, emb), 1.0, 1)
        self.w_ih = init((emb, hidden), 1 / math.sqrt(emb), 2)
        self.w_hh = init((hidden, hidden), 1 / math.sqrt(hidden), 3)
        self.b = nn.Parameter(torch.zeros(m, 1, hidden))
        self.w_out = init((hidden, vocab), 1 / math.sqrt(hidden), 4)
        self.b_out = nn.Parameter(torch.zeros(m, 1, vocab))
        self.models, self.emb_size, self.hidden = m, emb, hidden

    def forward(self, x: torch.Tensor, cfg: dict, masks: dict | None = None, last_only: bool = False) -> torch.Tensor:
        """Logits (M, B, T, V) for ids ``x`` (M, B, T). With ``masks`` (from :func:`draw_masks`) this is a
        training forward pass; without, evaluation (every mask replaced by its expectation). With
        ``last_only``, only the last step's logits, (M, B, 1, V): all a task with one target per
        sequence, at its end, needs (the recurrence is the same)."""
        m, b, t = x.shape
        e = self.emb[torch.arange(m)[:, None, None], x]
        w_hh = self.w_hh
        if masks is not None:
            e = e * masks["mx"]
            w_hh = w_hh * masks["mw"]
            z = masks["z"]
        else:
            z = cfg["pz"].view(m, 1, 1, 1).expand(m, b, t, self.hidden)
        xw = torch.baddbmm(self.b, e.reshape(m, b * t, -1), self.w_ih).view(m, b, t, self.hidden)
        h = xw.new_zeros(m, b, self.hidden)
        outs = []
        # unbind, not xw[:, :, s]: the backward of a slice allocates a full-size zero tensor at every step.
        mh = masks["mh"].unbind(2) if masks is not None else None
        for s, (xw_s, z_s) in enumerate(zip(xw.unbind(2), z.unbind(2))):
            h_in = h * mh[s] if mh is not None else h
            c = torch.tanh(xw_s + torch.bmm(h_in, w_hh))
            h = c + z_s * (h - c)  # zoneout: d * h_prev + (1 - d) * c
            if not last_only:
                outs.append(h)
        y = torch.stack(outs, 2) if not last_only else h[:, :, None]
        if masks is not None:
            y = y * (masks["my"] if not last_only else masks["my"][:, :, -1:])
        steps = y.shape[2]
        return torch.baddbmm(self.b_out, y.reshape(m, b * steps, self.hidden), self.w_out).view(m, b, steps, -1)


def mean_nll(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each model's mean cross-entropy (nats) over the positions that have a target; shape (M,).

    ``logits`` (M, B, T, V), ``y`` (M, B, T); positions with target :data:`IGNORE` do not count."""
    m = logits.shape[0]
    nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view(m, -1)
    if bool((y >= 0).all()):
        return nll.mean(1)
    valid = (y >= 0).reshape(m, -1).float()
    return (nll * valid).sum(1) / valid.sum(1)


def targets_only_at_end(split: TextSplit) -> bool:
    """True when every position but the last has no target (the delayed-recall task)."""
    return bool((split.y[:, :-1] == IGNORE).all())


def _targets(split: TextSplit, last_only: bool) -> torch.Tensor:
    return split.y[:, -1:] if last_only else split.y


@torch.no_grad()
def bits_per_char(model: ManyRNNs, cfg: dict, split: TextSplit) -> torch.Tensor:
    """Each model's mean cross-entropy on ``split`` in bits per character (per target), evaluation mode; (M,)."""
    m, last = model.models, targets_only_at_end(split)
    logits = model(split.x.expand(m, *split.x.shape), cfg, last_only=last)
    y = _targets(split, last)
    return mean_nll(logits, y.expand(m, *y.shape)) / math.log(2)


@torch.no_grad()
def accuracy(model: ManyRNNs, cfg: dict, split: TextSplit) -> torch.Tensor:
    """Each model's fraction of targets predicted right (arg max), evaluation mode, over positions with a target; (M,)."""
    m, last = model.models, targets_only_at_end(split)
    logits = model(split.x.expand(m, *split.x.shape), cfg, last_only=last)
    y = _targets(split, last).expand(m, *_targets(split, last).shape)
    valid = (y >= 0).float()
    return ((logits.argmax(-1) == y).float() * valid).flatten(1).sum(1) / valid.flatten(1).sum(1)


def _per_item(logp: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From log-probabilities (M, B, T, V) and targets (B, T): each model's mean bits per target of every
    sequence and its fraction of targets predicted right, both (M, B)."""
    m = logp.shape[0]
    y = y.expand(m, *y.shape)
    valid = (y >= 0)
    picked = logp.gather(-1, y.clamp(min=0)[..., None])[..., 0]
    count = valid.float().sum(-1)
    bits = -(picked * valid).sum(-1) / count / math.log(2)
    right = ((logp.argmax(-1) == y) & valid).float().sum(-1) / count
    return bits, right


@torch.no_grad()
def per_item_scores(model: ManyRNNs, cfg: dict, split: TextSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's bits per target and fraction right on every sequence of ``split``, evaluation mode:
    two (M, n_sequences) tensors, whose means over sequences are :func:`bits_per_char` and :func:`accuracy`
    when every sequence has the same number of targets."""
    m, last = model.models, targets_only_at_end(split)
    logp = torch.log_softmax(model(split.x.expand(m, *split.x.shape), cfg, last_only=last), -1)
    return _per_item(logp, _targets(split, last))


@torch.no_grad()
def mc_probabilities(model: ManyRNNs, cfg: dict, split: TextSplit, samples: int, generator=None,
                     chunk: int = 512) -> torch.Tensor:
    """Monte Carlo evaluation: each model's predicted probabilities averaged over ``samples`` draws of its
    training-mode masks (:func:`draw_masks`; one mask per sequence for a locked model), (M, n, T', V) with
    T' = 1 for a task whose only target is at the end. Models without dropout get their deterministic
    prediction ``samples`` times."""
    m, last = model.models, targets_only_at_end(split)
    out = []
    for i in range(0, len(split), chunk):
        x = split.x[i : i + chunk]
        total = 0.0
        for _ in range(samples):
            masks = draw_masks(cfg, x.shape[0], x.shape[1], model.emb_size, model.hidden, generator=generator)
            total = total + torch.softmax(model(x.expand(m, *x.shape), cfg, masks, last_only=last), -1)
        out.append(total / samples)
    return torch.cat(out, 1)


def scores_of_probabilities(probs: torch.Tensor, split: TextSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits per target and fraction right per sequence, (M, n) each, of predicted probabilities such as
    :func:`mc_probabilities` returns."""
    return _per_item(probs.clamp(min=1e-12).log(), _targets(split, targets_only_at_end(split)))


@dataclass
class Result:
    best_val: torch.Tensor  # (M,) lowest validation bits per char over epochs
    best_epoch: torch.Tensor  # (M,) the epoch (1-based) where it was reached
    test: torch.Tensor  # (M,) test bits per char of the parameters from that epoch
    val_curves: torch.Tensor  # (epochs, M)
    train_final: torch.Tensor  # (M,) training-text bits per char at the best epoch's parameters
    test_accuracy: torch.Tensor  # (M,) test accuracy (arg max) of the parameters from the best epoch
    model: "ManyRNNs | None" = None  # the trained models, at each one's best epoch
    cfg: dict | None = None  # their dropout configurations (:func:`config`)


def train_many(
    data: Corpus,
    sites: list[Sites],
    seeds: list[int],
    epochs: int = 40,
    batch: int = 16,
    lr: float = 1e-2,
    hidden: int = 48,
    emb: int = 16,
    vocab: int = len(VOCAB),
) -> Result:
    """Train one model per (sites[i], seeds[i]) with Adam; early stopping on validation bits per char.

    Model i's initial weights and minibatch order depend only on seeds[i], so models with the same seed
    start from the same weights and see the same minibatches (a paired comparison). The loss is the sum
    of the models' mean cross-entropies, so each model's gradient is its own, and Adam, being
    elementwise, updates each model exactly as if it were trained alone.
    """
    cfg = config(sites)
    model = ManyRNNs(seeds, vocab=vocab, emb=emb, hidden=hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # Cosine decay of the learning rate to zero over the run: the last epochs settle every model, so
    # models that learn slowly under heavy dropout are not compared half-trained.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    m, n = len(sites), len(data.train)
    last = targets_only_at_end(data.train)
    best = {k: v.detach().clone() for k, v in model.named_parameters()}
    best_val = torch.full((m,), float("inf"))
    best_epoch = torch.zeros(m, dtype=torch.int64)
    curves = []
    mask_gen = torch.Generator().manual_seed(int(sum(seeds)) + 17)
    for epoch in range(epochs):
        order = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(10_000 * s + epoch)) for s in seeds])
        for i in range(0, n - batch + 1, batch):
            idx = order[:, i : i + batch]
            masks = draw_masks(cfg, batch, data.train.x.shape[1], emb, hidden, generator=mask_gen)
            logits = model(data.train.x[idx], cfg, masks, last_only=last)
            loss = mean_nll(logits, _targets(data.train, last)[idx]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        schedule.step()
        val = bits_per_char(model, cfg, data.val)
        curves.append(val)
        better = val < best_val
        best_val = torch.where(better, val, best_val)
        best_epoch = torch.where(better, torch.full_like(best_epoch, epoch + 1), best_epoch)
        with torch.no_grad():
            for k, v in model.named_parameters():
                best[k] = torch.where(better.view(m, *([1] * (v.dim() - 1))), v, best[k])
    with torch.no_grad():
        for k, v in model.named_parameters():
            v.copy_(best[k])
    return Result(best_val, best_epoch, bits_per_char(model, cfg, data.test), torch.stack(curves),
                  bits_per_char(model, cfg, data.train), accuracy(model, cfg, data.test), model, cfg)
