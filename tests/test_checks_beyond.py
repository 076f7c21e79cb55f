"""Assignment 07's checks against implementations written in the test suite, and chapter 7's helpers.

Correct implementations written in different ways pass every check of their target over three grader
seeds; each buggy one fails every check aimed at its mistake for every seed. A correct function fails a
check by chance with probability at most 1e-6 (``autograde.stats``).
"""

import numpy as np
import pytest
import torch

from autograde import checks
from tests.checking import assert_fails, assert_passes, assert_round_trip, run, target_checks
from tests.implementations.beyond import ALL, load

TARGETS = ("mc_dropout_predict", "dropconnect_linear", "gaussian_dropout", "drop_path")
TARGET_CHECKS = target_checks(TARGETS)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: a second intra-op thread only adds synchronisation on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def by_key(target, key):
    return next(i for i in ALL if i.target == target and i.key == key)


def test_enough_implementations_per_target():
    for t in TARGETS:
        impls = [i for i in ALL if i.target == t]
        assert sum(i.correct for i in impls) >= 4 and sum(not i.correct for i in impls) >= 12, t
        assert len(TARGET_CHECKS[t]) == 2, t
        # every check of the target is aimed at by at least one buggy implementation
        assert set(TARGET_CHECKS[t]) == {n for i in impls for n in i.fails}, t


@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_gets_full_marks(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target])


@pytest.mark.parametrize("impl", [i for i in ALL if not i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_buggy_implementation_loses_points(impl):
    assert_fails(load(impl), impl.key, impl.fails)


MESSAGES = [
    ("mc_dropout_predict", "train_everything", "model.train() also switches BatchNorm"),
    ("mc_dropout_predict", "eval_only", "that is weight scaling, not MC dropout"),
    ("mc_dropout_predict", "no_restore", "restore each one afterwards"),
    ("mc_dropout_predict", "restore_top_only", "cannot restore a model whose modules were in different modes"),
    ("mc_dropout_predict", "children_only", "not model.children()"),
    ("mc_dropout_predict", "only_nn_dropout", "_DropoutNd"),
    ("mc_dropout_predict", "with_grad", "torch.no_grad()"),
    ("mc_dropout_predict", "variance", "the variance of the passes"),
    ("mc_dropout_predict", "swapped_return", "return (mean, std) in that order"),
    ("mc_dropout_predict", "last_pass_as_mean", "the mean equals a single pass"),
    ("mc_dropout_predict", "standard_error", "standard error of the mean"),
    ("mc_dropout_predict", "extra_pass_for_shape", "no extra pass"),
    ("mc_dropout_predict", "seeded_loop", "exactly the same output"),
    ("mc_dropout_predict", "float32_result", "float64"),
    ("mc_dropout_predict", "clamps_x_in_place", "x was modified"),
    ("dropconnect_linear", "per_example_masks", "not a mask per example"),
    ("dropconnect_linear", "masks_the_bias", "some bias entries were dropped"),
    ("dropconnect_linear", "no_scaling", "the inverted scaling is missing"),
    ("dropconnect_linear", "divide_by_p", "not by p"),
    ("dropconnect_linear", "swapped", "keep and drop look swapped"),
    ("dropconnect_linear", "nan_at_p1", "NaN"),
    ("dropconnect_linear", "eval_scales_by_q", "classic dropout's rule"),
    ("dropconnect_linear", "dropout_on_inputs", "is dropout on x, not DropConnect"),
    ("dropconnect_linear", "dropout_on_outputs", "dropout on the output units"),
    ("dropconnect_linear", "weight_in_place", "weight was modified"),
    ("dropconnect_linear", "bias_required", "bias=None"),
    ("dropconnect_linear", "p1_bias_expand", "bias=None at p=1 gives zeros: dropconnect_linear raised AttributeError"),
    ("dropconnect_linear", "own_generator_when_none", "right after the same torch.manual_seed"),
    ("gaussian_dropout", "own_generator_when_none", "right after the same torch.manual_seed"),
    ("drop_path", "own_generator_when_none", "right after the same torch.manual_seed"),
    ("gaussian_dropout", "std_is_p_over_q", "that is the variance: use its square root"),
    ("gaussian_dropout", "variance_p", "the variance is p: divide by q"),
    ("gaussian_dropout", "centred_at_zero", "centred at 0"),
    ("gaussian_dropout", "additive", "as for additive noise"),
    ("gaussian_dropout", "bernoulli_mask", "that is a Bernoulli mask"),
    ("gaussian_dropout", "uniform_noise", "does not look Gaussian"),
    ("gaussian_dropout", "p1_allowed", "p = 1 (infinite variance)"),
    ("drop_path", "elementwise", "that is dropout"),
    ("drop_path", "per_token", "each position along dim 1 got its own draw"),
    ("drop_path", "whole_batch", "not one for the whole batch"),
    ("drop_path", "pairs_share", "neighbouring samples"),
    ("drop_path", "three_dims_only", "x.dim()"),
]


@pytest.mark.parametrize("target, key, words", MESSAGES, ids=lambda v: str(v))
def test_messages_name_the_mistake(target, key, words):
    impl = by_key(target, key)
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in sorted(impl.fails))
    assert words in feedback, feedback


@pytest.mark.parametrize("name", ["mc_dropout_predict.more", "dropconnect_linear.safety"])
def test_scenario_and_none_arguments_cross_a_process_boundary(tmp_path, name):
    """Scenario facts (arrays, JSON lists of flags) and a None argument survive the .json/.npz round trip."""
    target = checks.get(name).target
    back = assert_round_trip(name, load(next(i for i in ALL if i.target == target and i.correct)), tmp_path)
    assert back.arrays, "no arrays came back"


def test_the_mc_grader_sees_batch_norm_and_every_pass():
    """The scenario's hooks: a model.train() implementation is seen running batch norm on batch statistics."""
    from autograde.checks import beyond

    plan = checks.make_plan(checks.get("mc_dropout_predict.contract"), "cpu", 3)
    call = next(c for c in plan.calls if c["id"] == "main")
    fn = load(by_key("mc_dropout_predict", "train_everything"))
    params = [torch.tensor(plan.inputs[a["tensor"]]) for a in call["args"][0]]
    facts = beyond.mc_scenario(fn, params, torch.tensor(plan.inputs["x"]), 5, kind="bn", modes="train")
    assert facts["n_calls"] == 5 and all(flags == [True] for flags in facts["bn_flags"])
    assert facts["passes"].shape == (5, beyond.MC_BATCH, beyond.MC_OUT) and not facts["state_unchanged"]


def test_gaussian_statistics_accept_exact_gaussian_noise_at_the_stated_rate():
    """The mean and variance tests are exact for Gaussian noise: over 2000 simulated draws at a loose alpha
    they reject about alpha of them (here alpha = 0.05 per test, not the grader's 1e-7)."""
    from scipy import stats as sps

    rng = np.random.default_rng(0)
    n, p = 1000, 0.3
    s2 = p / (1 - p)
    xi = 1 + np.sqrt(s2) * rng.standard_normal((2000, n))
    z = (xi.mean(1) - 1) / np.sqrt(s2 / n)
    chi = (n - 1) * xi.var(1, ddof=1) / s2
    reject_mean = np.mean(np.abs(z) > sps.norm.isf(0.025))
    reject_var = np.mean((chi < sps.chi2.ppf(0.025, n - 1)) | (chi > sps.chi2.isf(0.025, n - 1)))
    assert 0.035 < reject_mean < 0.065 and 0.035 < reject_var < 0.065  # binomial sd about 0.005 around 0.05


@pytest.mark.parametrize("q, right", [(1, "b"), (2, "c"), (3, "c"), (4, "b"), (5, "b")])
def test_practice_answers(q, right):
    name = f"answer_q{q}.beyond"
    assert run(name, right, 1).passed
    assert run(name, f" {right.upper()} ", 1).passed
    wrong = next(a for a in "abcd" if a != right)
    result = run(name, wrong, 1)
    assert not result.passed and "chapter 7" in result.feedback()


def test_cuda_is_skipped_with_a_note_on_cpu():
    result = run("drop_path.contract", load(by_key("drop_path", "rand_shape")), 1)
    skipped = [p for p in result.properties if p.status == "skip"]
    assert result.passed and skipped and "CPU only" in skipped[0].message


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")


@pytest.mark.cuda
def test_output_left_on_cpu_fails_on_cuda():
    fn = load(by_key("drop_path", "rand_shape"))
    result = run("drop_path.contract", lambda x, p, training=True, generator=None: fn(x.cpu(), p, training), 7, "cuda")
    assert not result.passed and "expected the output on cuda" in result.feedback()
