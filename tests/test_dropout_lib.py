"""The helpers the chapters share."""

import numpy as np
import torch

from dropout_lib.data import digits
from dropout_lib.experiments import mean_ci, mlp, train


def test_test_split_is_fixed_and_disjoint_from_training():
    a, b = digits(n_train=200, seed=1), digits(n_train=200, seed=2)
    assert torch.equal(a.test.x, b.test.x)
    assert len(a.train) == 200 and not torch.equal(a.train.x, b.train.x)
    rows = {tuple(r.tolist()) for r in a.test.x}
    assert not any(tuple(r.tolist()) in rows for r in a.train.x)


def test_mean_ci_covers_the_mean_at_about_the_stated_rate():
    rng = np.random.default_rng(0)
    hits = sum(lo <= 0 <= hi for _, lo, hi in (mean_ci(rng.normal(size=5)) for _ in range(2000)))
    assert 0.93 < hits / 2000 < 0.97  # binomial sd about 0.005 around 0.95


def test_training_reduces_training_error():
    d = digits(n_train=300, seed=0)
    h = train(mlp(64, 32, 10), d.train, epochs=15, lr=3e-3, val=d.val)
    assert h.train_err[-1] < h.train_err[0] and h.train_err[-1] < 0.2


def test_recall_task_targets_only_the_key_at_the_query():
    from dropout_lib import rnn_dropout as R

    a, b = R.recall_task(n_train=64, n_val=32, n_test=32, delay=12), R.recall_task(n_train=64, n_val=32, n_test=32, delay=12)
    assert torch.equal(a.test.x, b.test.x) and not torch.equal(a.train.x[:32], a.test.x)
    x, y = a.train.x, a.train.y
    assert x.shape == (64, 13) and (x[:, 0] < a.keys).all() and (x[:, 12] == a.vocab - 1).all()
    assert ((x[:, 1:12] >= a.keys) & (x[:, 1:12] < a.keys + a.distractors)).all()
    assert torch.equal(y[:, 12], x[:, 0]) and (y[:, :12] == R.IGNORE).all()


def test_mean_nll_ignores_positions_without_a_target():
    from dropout_lib import rnn_dropout as R

    logits = torch.randn(2, 3, 4, 5)
    y = torch.randint(0, 5, (2, 3, 4))
    full = R.mean_nll(logits, y)
    assert torch.allclose(full, torch.nn.functional.cross_entropy(logits.flatten(0, 2), y.flatten(), reduction="none").view(2, -1).mean(1))
    y_last = torch.full_like(y, R.IGNORE)
    y_last[..., -1] = y[..., -1]
    only_last = torch.nn.functional.cross_entropy(logits[:, :, -1].flatten(0, 1), y[:, :, -1].flatten(), reduction="none").view(2, -1).mean(1)
    assert torch.allclose(R.mean_nll(logits, y_last), only_last)


def test_many_mlps_equal_their_sequential_copies_and_train_like_them():
    """dropout_lib.many: a network of the stack equals nn.Sequential with the same weights, select() copies it,
    and training the stack equals training each network alone (Adam is elementwise)."""
    from torch import nn

    from dropout_lib.many import ManyMLPs, train_many

    torch.manual_seed(0)
    x, y = torch.randn(50, 6), torch.randint(0, 3, (50,))
    stack = ManyMLPs([1, 2, 3], (6, 8, 3), p=[0.0, 0.0, 0.0])
    alone = stack.select([1])
    seq = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        for lin, w, b in zip([seq[0], seq[2]], alone.weights, alone.biases):
            lin.weight.copy_(w[0].T)
            lin.bias.copy_(b[0, 0])
    assert torch.allclose(stack(x, sample=False)[1], seq(x), atol=1e-6)
    train_many(stack, x, y, epochs=3, lr=1e-2, batch_size=16)
    train_many(alone, x, y, epochs=3, lr=1e-2, batch_size=16)  # same seed, so the same minibatches
    assert torch.allclose(stack(x, sample=False)[1], alone(x, sample=False)[0], atol=1e-5)


def test_many_mlps_noise_has_the_stated_moments():
    from dropout_lib.many import ManyMLPs

    torch.manual_seed(1)
    stack = ManyMLPs([0, 1], (4, 4, 2), p=[0.3, 0.3], noise=["bernoulli", "gaussian"])
    xi = stack.noise(torch.ones(2, 20000, 50))
    for k in range(2):
        assert abs(float(xi[k].mean()) - 1) < 0.01 and abs(float(xi[k].var()) / (0.3 / 0.7) - 1) < 0.02
    assert set(torch.unique(xi[0]).tolist()) <= {0.0, float(torch.tensor(1 / 0.7))} and torch.unique(xi[1]).numel() > 2
