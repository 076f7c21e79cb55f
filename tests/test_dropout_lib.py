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
