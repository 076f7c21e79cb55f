"""Small data sets that need no download: scikit-learn's bundled 8x8 digits, split once and for all.

The test split is drawn with a fixed seed and never used for choosing anything; experiments vary the
training subset and the model's seed, choose hyperparameters on the validation split, and report test
error only at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_SEED = 20140101  # fixed: the held-out test split is the same in every chapter


@dataclass
class Split:
    x: torch.Tensor  # float32, (n, 64), pixel values scaled to [0, 1]
    y: torch.Tensor  # int64 labels 0..9

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Digits:
    train: Split
    val: Split
    test: Split


def digits(n_train: int | None = None, seed: int = 0, n_val: int = 300, n_test: int = 500) -> Digits:
    """Digits with a fixed held-out test split, a validation split, and a training subset of ``n_train``.

    ``seed`` chooses which examples form the training subset and the validation split (stratified).
    """
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=n_test, stratify=y, random_state=TEST_SEED)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=n_val, stratify=y_rest, random_state=seed)
    if n_train is not None and n_train < len(y_train):
        x_train, _, y_train, _ = train_test_split(x_train, y_train, train_size=n_train, stratify=y_train, random_state=seed)
    t = lambda a, b: Split(torch.from_numpy(a), torch.from_numpy(b))  # noqa: E731
    return Digits(t(x_train, y_train), t(x_val, y_val), t(x_test, y_test))
