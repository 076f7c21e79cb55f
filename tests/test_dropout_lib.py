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
