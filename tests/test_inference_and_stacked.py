"""dropout_lib.inference (the experiments' intervals and tests) and dropout_lib.stacked (many networks
trained side by side), plus the evaluation helpers of dropout_lib.rnn_dropout that chapter 6 uses.

Random checks test properties; where a check could fail by bad luck, the comment states how unlikely that is.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dropout_lib import inference as infer
from dropout_lib import stacked


# --- inference ---------------------------------------------------------------------------------------
def test_paired_is_the_t_interval_of_the_per_seed_differences():
    a, b = [0.10, 0.12, 0.09, 0.11, 0.13], [0.12, 0.13, 0.12, 0.12, 0.14]
    d = infer.paired(a, b)
    diffs = np.subtract(a, b)
    half = stats.t.ppf(0.975, 4) * diffs.std(ddof=1) / math.sqrt(5)
    assert d.mean == pytest.approx(diffs.mean()) and d.hi - d.mean == pytest.approx(half)
    assert d.excludes_zero and d.n == 5
    with pytest.raises(ValueError):
        infer.paired([1.0, 2.0], [1.0])


def test_detectable_difference_is_about_2_8_standard_errors_for_many_seeds():
    assert infer.detectable(1.0, 10_000) * math.sqrt(10_000) == pytest.approx(1.96 + 0.8416, abs=0.01)
    assert infer.detectable(1.0, 5) > 2.8 / math.sqrt(5)  # t quantiles are wider with few seeds
    assert math.isnan(infer.detectable(1.0, 1))


def test_bootstrap_interval_never_leaves_the_range_of_the_data():
    acc = [0.125, 1.0, 0.125, 1.0, 0.25]  # bimodal accuracies, where a t interval runs past 100%
    t = infer.t_interval(acc)
    b = infer.bootstrap_mean(acc)
    assert t.hi > 1.0
    assert min(acc) <= b.lo <= b.mean <= b.hi <= max(acc)


def test_seeds_and_items_covers_the_mean_and_widens_with_item_noise():
    # 100 simulated experiments, 10 seeds x 200 items of Bernoulli(0.1) errors. A 95% interval that covers
    # the true mean in fewer than 85 of them would be a bug: for a (conservative) coverage of at least 0.95
    # that happens with probability about 1e-4.
    rng = np.random.default_rng(0)
    hits = 0
    for r in range(100):
        x = (rng.random((10, 200)) < 0.1).astype(float)
        ci = infer.seeds_and_items(x, n_boot=500, seed=r)
        hits += ci.lo <= 0.1 <= ci.hi
    assert hits >= 85
    # With identical seeds, the seeds-only interval has zero width; resampling the items does not.
    same = np.tile((rng.random(200) < 0.1).astype(float), (5, 1))
    assert infer.t_interval(same.mean(1)).hi == pytest.approx(same.mean())
    assert infer.seeds_and_items(same).hi > same.mean() + 0.01


def test_mcnemar_counts_discordant_items_and_gives_the_exact_p_value():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    b = np.zeros(12, dtype=bool)
    r = infer.mcnemar(a, b)
    assert (r.only_a_wrong, r.only_b_wrong) == (10, 0) and r.p_value == pytest.approx(2 * 0.5**10)
    assert infer.mcnemar(a, a).p_value == 1.0


def test_wilson_interval_stays_in_the_unit_interval():
    lo, hi = infer.wilson(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35
    lo, hi = infer.wilson(7, 10)
    assert 0 < lo < 0.7 < hi < 1


# --- stacked networks --------------------------------------------------------------------------------
def test_stacked_mlp_members_are_ordinary_networks_and_train_as_if_alone():
    torch.manual_seed(0)
    x = torch.randn(2, 40, 6)
    y = torch.randint(0, 3, (2, 40))
    together = stacked.StackedMLP([3, 4], [6, 5, 3], p=0.0)
    out = together.eval()(x)
    for i in range(2):
        assert torch.allclose(together.member(i).eval()(x[i]), out[i], atol=1e-6)
    alone = stacked.StackedMLP([4], [6, 5, 3], p=0.0)
    stacked.train_stacked(together.train(), x, y, [3, 4], epochs=3, lr=1e-2, batch_size=8)
    stacked.train_stacked(alone.train(), x[1:], y[1:], [4], epochs=3, lr=1e-2, batch_size=8)
    for w_all, w_one in zip(together.weights, alone.weights):
        assert torch.allclose(w_all[1], w_one[0], atol=1e-5)


def test_train_stacked_keeps_each_models_best_validation_epoch():
    torch.manual_seed(1)
    x, y = torch.randn(3, 60, 4), torch.randint(0, 2, (3, 60))
    net = stacked.StackedMLP([0, 1, 2], [4, 8, 2], p=[0.0, 0.3, 0.8])
    hist = stacked.train_stacked(net, x, y, [0, 1, 2], epochs=6, lr=3e-2, batch_size=16, val=(x, y))
    final = stacked.stacked_error(net, x, y)
    assert torch.allclose(final, hist.best_val)
    assert torch.equal(hist.val_err.min(0).values, hist.best_val)


def test_feature_masks_have_their_structure_and_scale():
    gen = torch.Generator().manual_seed(2)
    shape = (64, 3, 4, 8, 8)
    p = torch.tensor([0.1, 0.3, 0.8])
    el = stacked.feature_mask(shape, "element", p, generator=gen)
    sp = stacked.feature_mask(shape, "spatial", p, generator=gen)
    bl = stacked.feature_mask(shape, "block", p, generator=gen)
    kept = el[:, 1][el[:, 1] != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.7))
    assert bool((sp == sp[..., :1, :1]).all())  # one decision per (sample, channel)
    # Drop rates: 64*4*64 units per model; 8 standard deviations (false failure below 1e-14).
    for j, pj in enumerate(p.tolist()):
        n = el[:, j].numel()
        assert abs(float((el[:, j] == 0).float().mean()) - pj) < 8 * math.sqrt(pj * (1 - pj) / n)
    # DropBlock's mask is renormalised per model: it averages exactly 1 over each model's tensor.
    assert torch.allclose(bl.mean(dim=(0, 2, 3, 4)), torch.ones(3), atol=1e-5)
    assert bool((bl[:, 2] == 0).any())


def test_stacked_cnn_subset_and_schedule():
    net = stacked.StackedCNN([0, 1, 2], ["none", "element", "block"], [0.0, 0.2, 0.0], width=4)
    x = torch.rand(3, 10, 64)
    with torch.no_grad():
        full = net.eval()(x)
        part = net.subset([2, 0]).eval()(x[[2, 0]])
    assert torch.allclose(part, full[[2, 0]], atol=1e-5)
    hook = stacked.linear_rate_schedule([0.0, 0.0, 0.6], total_steps=10, models=[2])
    hook(net, 5)
    assert net.p.tolist() == pytest.approx([0.0, 0.2, 0.3])
    assert stacked.mean_rate_of_schedule(0.6, 10) == pytest.approx(np.mean([0.6 * s / 10 for s in range(10)]))


# --- chapter 6's evaluation helpers -----------------------------------------------------------------
def test_recall_evaluation_helpers_agree_with_the_full_forward_pass():
    from dropout_lib import rnn_dropout as R

    task = R.recall_task(n_train=32, n_val=16, n_test=24, delay=6)
    cfg = R.config([R.Sites(), R.Sites(ph=0.4, locked=True)])
    model = R.ManyRNNs([0, 1], vocab=task.vocab, emb=5, hidden=7)
    x = task.test.x.expand(2, *task.test.x.shape)
    with torch.no_grad():
        full = model(x, cfg)
        last = model(x, cfg, last_only=True)
    assert torch.allclose(full[:, :, -1:], last, atol=1e-6)
    bits, right = R.per_item_scores(model, cfg, task.test)
    assert torch.allclose(bits.mean(1), R.bits_per_char(model, cfg, task.test), atol=1e-5)
    assert torch.allclose(right.mean(1), R.accuracy(model, cfg, task.test))
    probs = R.mc_probabilities(model, cfg, task.test, samples=3, generator=torch.Generator().manual_seed(0))
    # The model without dropout gives its deterministic prediction every time.
    assert torch.allclose(probs[0], torch.softmax(last[0], -1), atol=1e-6)
    mc_bits, _ = R.scores_of_probabilities(probs, task.test)
    assert torch.allclose(mc_bits[0], bits[0], atol=1e-4)
