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


# --- dropout_lib.regime: the regime of chapters 1 and 4, and many MLPs trained side by side -----------

def test_batched_models_train_exactly_as_each_would_alone():
    """A batched fit (shared parameter tensors, fused AdamW, per-model L2 penalty, decay and max-norm) ends
    where nn.Sequential networks trained one by one with torch.optim end, to float32 rounding."""
    import math

    from torch import nn
    from torch.nn import functional as F

    from dropout_lib.regime import Arm, _init, fit, noisy_digits

    regime = noisy_digits(0.2, n_train=96, n_val=40)
    arms = [Arm(seed=3, lr=3e-3), Arm(seed=3, lr=1e-2, decay=0.3), Arm(seed=5, lr=3e-3, l2=1e-2),
            Arm(seed=5, lr=3e-3, max_norm=0.3)]
    batched = fit(regime, arms, (16, 12), epochs=3, batch_size=32, eval_every=None)
    for k, arm in enumerate(arms):
        net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 10))
        linears = [m for m in net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for layer, (w, b) in zip(linears, _init([64, 16, 12, 10], arm.seed)):
                layer.weight.copy_(w.T)
                layer.bias.copy_(b[0])
        opt = torch.optim.AdamW(net.parameters(), lr=arm.lr, weight_decay=arm.decay)
        train_idx, _ = regime.indices(arm.seed)
        x, y = regime.pool.x[train_idx], regime.pool.y[train_idx]
        order = torch.Generator().manual_seed(104_729 * arm.seed + 3)  # fit's minibatch order for this seed
        for _ in range(3):
            perm = torch.randperm(len(y), generator=order)
            for i in range(0, len(y), 32):
                b = perm[i : i + 32]
                loss = F.cross_entropy(net(x[b]), y[b]) + 0.5 * arm.l2 * sum((p * p).sum() for p in net.parameters())
                opt.zero_grad()
                loss.backward()
                opt.step()
                if math.isfinite(arm.max_norm):
                    with torch.no_grad():
                        for layer in linears[:-1]:
                            layer.weight.copy_(torch.renorm(layer.weight, 2, 0, arm.max_norm))
        with torch.no_grad():
            alone = F.cross_entropy(net(regime.test.x), regime.test.y).item()
            as_module = F.cross_entropy(batched.sequential(k)(regime.test.x), regime.test.y).item()
        assert abs(alone - float(batched.final["test_loss"][k])) < 1e-4 * alone, (k, alone, batched.final["test_loss"][k])
        assert abs(as_module - alone) < 1e-4 * alone


def test_each_model_drops_at_its_own_rate_and_scales_survivors_by_one_over_q():
    from scipy import stats

    from dropout_lib.regime import _mask

    p = torch.tensor([0.1, 0.3, 0.8, 0.0, 1.0])
    n = 20_000
    m = _mask((5, 1, n), p, torch.Generator().manual_seed(0))
    for k, pk in enumerate(p.tolist()):
        kept = m[k] != 0
        if 0 < pk < 1:  # the dropped count is Binomial(n, p): a two-sided 1e-6 acceptance interval
            lo, hi = stats.binom.ppf([5e-7, 1 - 5e-7], n, pk)
            assert lo <= int((~kept).sum()) <= hi, (pk, int((~kept).sum()))
            assert torch.allclose(m[k][kept], torch.tensor(1 / (1 - pk)))
    assert bool((m[3] == 1).all()) and bool((m[4] == 0).all())  # p = 0 keeps all, p = 1 gives zeros, not NaN


def test_noisy_digits_replaces_the_stated_fraction_by_other_classes_and_keeps_the_test_split():
    from scipy import stats

    from dropout_lib.data import digits
    from dropout_lib.regime import noisy_digits

    regime = noisy_digits(0.3)
    changed = regime.pool.y != regime.pool.clean
    lo, hi = stats.binom.ppf([5e-7, 1 - 5e-7], len(changed), 0.3)  # false failure probability 1e-6
    assert lo <= int(changed.sum()) <= hi
    assert torch.equal(regime.test.y, regime.test.clean) and torch.equal(regime.test.x, digits().test.x)
    assert torch.equal(noisy_digits(0.0).pool.y, regime.pool.clean)
    small, val = regime.indices(4, n_train=50)
    large, val2 = regime.indices(4, n_train=200)
    assert torch.equal(val, val2) and torch.equal(large[:50], small) and not set(large.tolist()) & set(val.tolist())


def test_paired_intervals_say_what_they_are_conditional_on():
    import numpy as np

    from dropout_lib.regime import mean_interval, paired

    rng = np.random.default_rng(0)
    # Every seed makes the same mistakes: no seed-to-seed variation, so the t interval has zero width, while
    # the two-way bootstrap still sees the test items' sampling error.
    wrong_a = np.tile(rng.random(400) < 0.3, (6, 1))
    wrong_b = np.tile(rng.random(400) < 0.2, (6, 1))
    c = paired(wrong_a.mean(1), wrong_b.mean(1), wrong_a, wrong_b)
    assert c.lo == c.hi == c.mean and c.hi_both - c.lo_both > 0.05 and c.lo_both < c.mean < c.hi_both
    same = paired(wrong_a.mean(1), wrong_a.mean(1), wrong_a, wrong_a)
    assert same.lo_both == same.hi_both == 0 and not same.excludes_zero
    m, lo, hi = mean_interval([0.0, 0.0, 0.0, 0.02])  # a t interval would run below 0%
    assert 0.0 <= lo <= m <= hi <= 1.0


def test_choose_keeps_the_lowest_validation_error_and_reuses_finished_runs():
    import numpy as np

    from dropout_lib.regime import Arm, Point, Table, choose, noisy_digits

    regime = noisy_digits(0.2, n_train=60, n_val=40)
    table = Table()
    cands = [Arm(lr=lr) for lr in (1e-4, 1e-2)]
    pt = Point("x", cands, (8,), 2, 60)
    chosen = choose(regime, table, [pt], tune_seeds=(0, 1), seeds=(0, 1, 2))
    val = [table.get("val_err", c, (8,), 60, 2, (0, 1)).mean() for c in cands]
    assert chosen["x"] == (cands[int(np.argmin(val))], int(np.argmin(val)))
    assert table.models == 2 * 2 + 1  # two candidates on the tuning seeds, then the chosen one on seed 2
    choose(regime, table, [pt], tune_seeds=(0, 1), seeds=(0, 1, 2))
    assert table.models == 5  # nothing trained twice


def test_pilot_choice_and_autoencoder_shapes():
    from dropout_lib.regime import Arm, chosen_noise, fit_autoencoders, noisy_digits, pilot

    rows = [dict(noise=0.0, p_input=0.0, test_err_none=0.05, gain_lo_both=-0.01),
            dict(noise=0.2, p_input=0.0, test_err_none=0.2, gain_lo_both=0.07),
            dict(noise=0.4, p_input=0.0, test_err_none=0.35, gain_lo_both=0.14),
            dict(noise=0.2, p_input=0.2, test_err_none=0.2, gain_lo_both=0.09)]
    assert chosen_noise({"candidates": rows}) == 0.2
    assert chosen_noise(pilot()) in {c["noise"] for c in pilot()["candidates"]}
    x = noisy_digits(0.0).pool.x
    ae = fit_autoencoders(x[:100], x[100:150], [Arm(seed=0, p=0.0), Arm(seed=0, p=0.5)], hidden=16, epochs=1)
    assert ae.activations(x[:7]).shape == (2, 7, 16) and ae.features().shape == (2, 16, 64)
    assert (ae.activations(x[:7]) >= 0).all() and ae.test_mse.shape == (2,)


def test_mnist1d_is_generated_locally_without_the_network(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    from dropout_lib.regime import mnist1d_pool

    pool = mnist1d_pool(40, seed=1)
    assert pool.x.shape == (40, 40) and pool.y.shape == (40,) and set(pool.y.tolist()) <= set(range(10))


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
