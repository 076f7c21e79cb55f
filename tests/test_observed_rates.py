"""Independence and freshness are judged against the masks' *observed* drop rates.

``properties.agreement_interval`` conditions on the two masks' counts: given them, the overlap of two
independent masks with exchangeable entries is hypergeometric, exactly, whatever the rate. So a correct
implementation fails an independence property with probability at most ``stats.ALPHA_PER_TEST``, and an
implementation whose only mistake is its rate keeps every independence, freshness and generator property and
loses only the drop-rate property, whose message names the mistake.
"""

import functools

import numpy as np
import pytest
from scipy.stats import hypergeom

from autograde import stats
from autograde.checks import properties as prop
from tests.checking import SEEDS, run
from tests.implementations import beyond, bernoulli_masks, cnn_dropout, cost, ensemble, inverted_dropout, rnn_dropout


@pytest.mark.parametrize("n, k_a, k_b", [(400, 120, 130), (1000, 20, 900), (131072, 39321, 39500), (50, 1, 49)])
def test_the_conditional_false_failure_probability_is_at_most_alpha(n, k_a, k_b):
    """Summed exactly from the hypergeometric law: the probability, given the counts, that two independent
    masks land outside the interval."""
    for alpha in (stats.ALPHA_PER_TEST, 0.05):
        interval = prop.agreement_interval(n, k_a, k_b, alpha)
        lo_x, hi_x = (interval.lo - (n - k_a - k_b)) // 2, (interval.hi - (n - k_a - k_b)) // 2
        law = hypergeom(n, k_a, k_b)
        assert law.cdf(lo_x - 1) + law.sf(hi_x) <= alpha
        # and the centre is what independence predicts at the observed rates r_a, r_b
        r_a, r_b = k_a / n, k_b / n
        assert interval.prob == pytest.approx(r_a * r_b + (1 - r_a) * (1 - r_b))


def test_independent_masks_are_rejected_at_most_alpha_of_the_time_at_any_rate():
    """A simulation at alpha = 0.05, with rates far from each other and from 0.5: the rejection rate stays within
    the simulation's own noise of at most 0.05."""
    interval = functools.lru_cache(maxsize=None)(lambda n, a, b: prop.agreement_interval(n, a, b, 0.05))
    rng = np.random.default_rng(20240611)
    trials, n = 1500, 300
    for r_a, r_b in ((0.05, 0.05), (0.15, 0.3), (0.8, 0.4)):
        a = rng.random((trials, n)) < r_a
        b = rng.random((trials, n)) < r_b
        rejected = sum(int((x == y).sum()) not in interval(n, int(x.sum()), int(y.sum())) for x, y in zip(a, b))
        assert rejected / trials <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials), (r_a, r_b, rejected)


def test_shared_repeated_and_complementary_masks_are_rejected():
    rng = np.random.default_rng(1)
    a = rng.random(5000) < 0.3
    for b, words in ((a, "shared mistake"), (~a, "not drawn independently")):
        j = _judge()
        assert not prop.independent(j, "p", a, b, 0.3, "two masks", "shared mistake")
        assert words in j.result.properties[-1].message
    j = _judge()
    assert not prop.independent(j, "p", a, np.zeros_like(a), 0.3, "two masks", "shared mistake")
    assert "nothing about it is random" in j.result.properties[-1].message


def _judge():
    from autograde.probe import Plan, Raw
    from autograde.verdict import Judge

    return Judge(Plan(check="t.t", target="t", device="cpu", seed=0), Raw({}, {}, {}))


# --- a rate-only bug costs only the rate ----------------------------------------------------------
# Each drops (or, for zoneout, keeps the old value) with probability p / 2 for 0 < p < 1 (DropBlock: half
# the seed rate gamma) and is otherwise correct. The rate properties are the only ones allowed to fail.
RATE = ("drop rate", "keeps h_prev with probability", "seed rate gamma", "dropped fraction close to p")
HALF_RATE = [
    (bernoulli_masks, "bernoulli_mask", "bernoulli_mask.contract", ["bernoulli_mask.randomness"], "survived"),
    (bernoulli_masks, "dropout_standard", "dropout_standard.contract", ["dropout_standard.safety"], "survived"),
    (inverted_dropout, "dropout_inverted", "dropout_inverted.contract", ["dropout_inverted.safety"], "survived"),
    (cnn_dropout, "dropout2d", "dropout2d.contract", ["dropout2d.sharing", "dropout2d.safety"], "survived"),
    (cnn_dropout, "dropblock2d", "dropblock2d.blocks", ["dropblock2d.safety"], "your seeds look like gamma"),
    (rnn_dropout, "locked_dropout", "locked_dropout.contract", ["locked_dropout.randomness"], "survived"),
    (rnn_dropout, "zoneout", "zoneout.contract", ["zoneout.randomness"], "kept h_prev"),
    (ensemble, "mc_ensemble_mean", "mc_ensemble_mean.contract", ["mc_ensemble_mean.randomness"], "survived"),
    (beyond, "dropconnect_linear", "dropconnect_linear.contract", ["dropconnect_linear.safety"], "survived"),
    (beyond, "drop_path", "drop_path.contract", ["drop_path.safety"], "survived"),
    (cost, "packed_mask", "packed_mask.contract", ["packed_mask.randomness"], "survived"),
    (cost, "lean_dropout", "lean_dropout.contract", ["lean_dropout.safety", "lean_dropout.memory"], "survived"),
]


@pytest.mark.parametrize("module, target, rate_check, other_checks, words", HALF_RATE, ids=lambda v: str(v)[:30])
def test_a_rate_only_bug_fails_the_rate_and_keeps_independence(module, target, rate_check, other_checks, words):
    impl = next(i for i in module.ALL if i.target == target and i.key in ("half_rate", "half_gamma"))
    fn = module.load(impl)
    for seed in SEEDS:
        result = run(rate_check, fn, seed)
        failed = [p for p in result.properties if p.status == "fail"]
        assert failed and all(p.name.startswith(RATE) for p in failed), result.feedback()
        assert words in result.feedback()
        for name in other_checks:
            other = run(name, fn, seed)
            assert other.passed, f"{name}, seed {seed}:\n{other.feedback()}"


# --- correct implementations over many seeds ---------------------------------------------------------
MANY = [
    (bernoulli_masks, "bernoulli_mask", "bernoulli_mask.randomness"),
    (inverted_dropout, "Dropout", "Dropout.masks"),
    (cnn_dropout, "dropout2d", "dropout2d.sharing"),
    (cnn_dropout, "dropblock2d", "dropblock2d.safety"),
    (rnn_dropout, "zoneout", "zoneout.randomness"),
    (ensemble, "mc_ensemble_mean", "mc_ensemble_mean.randomness"),
    (beyond, "drop_path", "drop_path.safety"),
    (cost, "packed_mask", "packed_mask.randomness"),
]


@pytest.mark.parametrize("module, target, name", MANY, ids=lambda v: str(v)[:30])
def test_correct_implementations_pass_the_independence_checks_over_many_seeds(module, target, name):
    """Each check fails a correct implementation by chance with probability at most 1e-6 (autograde.stats), so
    twelve seeds of several implementations must all pass."""
    correct = [i for i in module.ALL if i.target == target and i.correct][:2]
    for impl in correct:
        fn = module.load(impl)
        for seed in range(100, 106):
            result = run(name, fn, seed)
            assert result.passed, f"{impl.key}, seed {seed}:\n{result.feedback()}"
