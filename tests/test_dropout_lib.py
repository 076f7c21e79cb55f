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


# --- dropout_lib.cost (chapter 9) -------------------------------------------------------------------

def test_philox_reproduces_random123_known_answers():
    from dropout_lib.cost import philox4x32

    def words(counter, key):
        return " ".join(f"{int(w):08x}" for w in philox4x32(counter, key))

    # Random123's kat_vectors for philox4x32-10
    assert words([0, 0, 0, 0], [0, 0]) == "6627e8d5 e169c58d bc57ac4c 9b00dbd8"
    f = 0xFFFFFFFF
    assert words([f, f, f, f], [f, f]) == "408f276d 41c83b0e a20bc7c6 6d5451fd"
    assert (words([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0])
            == "d16cfe09 94fdcceb 5001e420 24126ea1")


def test_philox_stream_slices_are_computed_directly_and_look_uniform():
    from dropout_lib.cost import philox_uniform

    whole = philox_uniform(7, 0, 4003)
    for start, stop in ((0, 1), (1, 6), (1001, 4003), (4000, 4003)):
        assert np.array_equal(philox_uniform(7, start, stop), whole[start:stop])
    assert whole.dtype == np.float32 and 0 <= whole.min() and whole.max() < 1
    assert abs(whole.mean() - 0.5) < 0.03  # sd of the mean of 4003 uniforms: 0.0046
    assert not np.array_equal(philox_uniform(8, 0, 100), whole[:100])


def test_saved_tensors_counts_what_autograd_keeps_and_each_storage_once():
    from dropout_lib.cost import saved_tensors, unique_bytes

    x = torch.randn(100, 50, requires_grad=True)
    _, saved = saved_tensors(lambda: torch.relu(x) * 2.0)  # relu keeps its output; a scalar product keeps nothing
    assert [(s.dtype, s.shape, s.nbytes) for s in saved] == [("float32", (100, 50), 20_000)]
    r = torch.relu(x)
    _, saved = saved_tensors(lambda: r * r)  # the same tensor saved twice by one product
    assert len(saved) == 2 and unique_bytes(saved) == 20_000


def test_peak_memory_counts_storages_allocated_inside_and_frees_them():
    from dropout_lib.cost import PeakMemory

    keep = torch.zeros(10)
    with PeakMemory() as m:
        a = torch.empty(1000)  # 4,000 bytes
        b = a.view(10, 100)  # a view: no new storage
        c = torch.empty(500)  # 2,000 bytes
        del c
        d = torch.empty(250)  # 1,000 bytes, after c was freed
        keep.add_(1)  # in place on a storage from before: not counted
    assert m.peak == 6000 and m.current == 5000
    del a, b, d


def test_time_paired_returns_one_time_per_round_for_each_function():
    from dropout_lib.cost import median_spread, time_paired

    times = time_paired({"a": lambda: sum(range(100)), "b": lambda: sum(range(1000))}, rounds=4, min_seconds=1e-4)
    assert set(times) == {"a", "b"} and all(len(v) == 4 and min(v) > 0 for v in times.values())
    assert median_spread([1.0, 2.0, 3.0, 4.0, 100.0]) == (3.0, 2.0, 4.0)
