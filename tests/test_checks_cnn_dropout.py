"""Assignment 05's checks against implementations written in the test suite.

Correct implementations written in different ways must pass every check over several grader seeds; each
buggy one must fail the check aimed at its mistake, for every seed. A correct function fails a check by
chance with probability at most ``stats.FALSE_FAILURE_PER_CHECK`` (1e-6).
"""

import warnings

import numpy as np
import pytest

from autograde import checks
from autograde.checks import cnn_dropout as cd
from tests import checking
from tests.checking import SEEDS, assert_passes, target_checks
from tests.implementations.cnn_dropout import ALL, load

TARGET_CHECKS = target_checks(("dropout2d", "dropblock2d"))


def run(name, fn, seed, device="cpu"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # F.dropout2d's 3-D warning from the buggy wrappers
        return checking.run(name, fn, seed, device)


def impl(target, key):
    return next(i for i in ALL if i.target == target and i.key == key)


def test_each_function_meets_enough_implementations():
    for target in TARGET_CHECKS:
        assert sum(i.correct for i in ALL if i.target == target) >= 4
        assert sum(not i.correct for i in ALL if i.target == target) >= 10


@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_gets_full_marks(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], runner=run)


@pytest.mark.parametrize("impl", [i for i in ALL if not i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_buggy_implementation_loses_points(impl):
    fn = load(impl)
    for seed in SEEDS:
        for name in impl.fails:
            result = run(name, fn, seed)
            assert not result.passed, f"{impl.key} passed {name} with seed {seed}"
            assert all(p.message for p in result.properties if p.status == "fail")


@pytest.mark.parametrize(
    "target, key, words",
    [
        ("dropout2d", "element_wise", "element-wise dropout"),
        ("dropout2d", "channels_last", "channels-last"),
        ("dropout2d", "shared_over_channels", "same spatial mask is used for every channel"),
        ("dropout2d", "per_sample", "whole samples are kept or dropped together"),
        ("dropout2d", "per_channel_only", "share one channel mask"),
        ("dropout2d", "no_scaling", "missing scaling"),
        ("dropout2d", "swapped", "keep and drop look swapped"),
        ("dropout2d", "drops_in_eval", "must not drop at evaluation"),
        ("dropout2d", "nan_at_p1", "NaN"),
        ("dropout2d", "accepts_3d", "nn.Dropout2d pitfall"),
        ("dropout2d", "same_every_call", "same mask comes back every call"),
        ("dropout2d", "in_place", "modified"),
        ("dropblock2d", "no_renormalisation", "no renormalisation"),
        ("dropblock2d", "renormalise_by_q", "1/(1 - p) is not right here"),
        ("dropblock2d", "per_sample_scale", "one factor for the whole tensor"),
        ("dropblock2d", "gamma_equals_p", "gamma looks equal to p"),
        ("dropblock2d", "gamma_without_valid_region", "valid seed region"),
        ("dropblock2d", "single_units", "single units are dropped"),
        ("dropblock2d", "blocks_too_big", "blocks of the wrong size"),
        ("dropblock2d", "blocks_too_small", "blocks of the wrong size"),
        ("dropblock2d", "clipped_at_border", "fits in the map"),
        ("dropblock2d", "shared_across_channels", "every channel seems to share one mask"),
        ("dropblock2d", "shared_across_batch", "every sample seems to share one mask"),
        ("dropblock2d", "drops_in_eval", "must not drop at evaluation"),
        ("dropblock2d", "no_p1_case", "at p = 1 everything is dropped"),
        ("dropblock2d", "no_block_size_check", "block_size = 8"),
        ("dropblock2d", "corners_one_short", "the last row or column is never dropped"),
        ("dropblock2d", "fractional_block_size", "block_size = 2.5 (not an integer)"),
        ("dropblock2d", "valueerror_only_in_training", "with training=False"),
        ("dropblock2d", "nan_when_nothing_kept", "return zeros when nothing is kept"),
        ("dropout2d", "valueerror_only_in_training", "with training=False"),
        ("dropout2d", "float32_factor", "to float64 precision"),
    ],
)
def test_messages_name_the_mistake(target, key, words):
    i = impl(target, key)
    feedback = "\n".join(run(n, load(i), 5).feedback() for n in sorted(i.fails))
    assert words in feedback, feedback


def test_dropblock_statistics_are_what_the_docstring_says():
    """The numbers the module docstring and chapter 5 quote, recomputed."""
    assert cd.expected_fraction(0.1, 3, 16, 16) == pytest.approx(0.0952, abs=1e-4)
    assert cd.expected_fraction(0.3, 3, 16, 16) == pytest.approx(0.2590, abs=1e-4)
    assert cd.bernstein_halfwidth(2048, 25 / 1024) == pytest.approx(0.0229, abs=1e-4)
    assert cd.expected_fraction(0.3, 1, 16, 16) == pytest.approx(0.3)  # block_size 1: element-wise
    # coverage counts every valid corner once per unit of its block
    k = cd.coverage(3, 16, 16)
    assert k.sum() == 14 * 14 * 9 and k.max() == 9


def test_dropblock_sharing_one_seed_map_across_channels_is_named_not_a_crash():
    """A DropBlock that shares one seed map across the channels of a sample (a real mistake) once made the blocks
    check read a region that did not exist: at p = 0.1 a sample's map is empty with probability about 0.06, and
    then all of the first 256 maps the check inspected were. The check now counts a shared map once, so its
    statistics stay valid and say nothing about the sharing; the safety check names the mistake."""
    fn = load(impl("dropblock2d", "shared_across_channels"))
    for seed in range(24):
        result = run("dropblock2d.blocks", fn, seed)
        assert result.crashed is None and not any(p.name == "judged" for p in result.properties), result.feedback()
        assert result.passed, f"seed {seed}:\n{result.feedback()}"
        assert "the channels of each sample share one mask" in result.feedback()
    safety = run("dropblock2d.safety", fn, 0)
    assert not safety.passed and "every channel seems to share one mask" in safety.feedback()


def test_dropblock_blocks_check_survives_empty_first_maps():
    """The exact condition of the old crash, made on purpose: the outputs at p = 0.1 and 0.3 with every map of
    the first sample empty (no seed), from an implementation that shares seed maps across channels."""
    from autograde.checks import judge, make_plan, probe_here

    c = checks.get("dropblock2d.blocks")
    plan = make_plan(c, "cpu", 3)
    raw = probe_here(c, plan, load(impl("dropblock2d", "shared_across_channels")))
    x = plan.inputs["x"]
    for cid in ("t0.1", "t0.3"):
        out = raw.arrays[f"{cid}/out"].copy()
        out[0] = x[0]  # sample 0: nothing dropped in any channel
        raw.arrays[f"{cid}/out"] = out
    result = judge(c, plan, raw)
    assert result.crashed is None and not any(p.name == "judged" for p in result.properties), result.feedback()
    assert cd.smallest_region(raw.arrays["t0.1/out"] == 0) is not None
    assert cd.smallest_region(np.zeros((3, 2, 5, 5), dtype=bool)) is None


def test_coverage_bound_is_what_the_task_text_says():
    """The probability that a correct DropBlock leaves some position of the 16 x 16 maps never dropped in the blocks
    check (2048 maps at p = 0.1 and 2048 at p = 0.3, block_size 3) is below 1e-30, as the assignment states."""
    h = w = 16
    bound = cd.never_dropped_bound([(cd.gamma(0.1, 3, h, w), 2048), (cd.gamma(0.3, 3, h, w), 2048)], 3, h, w)
    assert bound < 1e-30


def test_opening_accepts_blocks_and_rejects_stray_units():
    d = np.zeros((1, 1, 8, 8), dtype=bool)
    d[0, 0, 0:3, 2:5] = True
    d[0, 0, 4:7, 4:7] = True
    d[0, 0, 5:8, 5:8] = True
    assert (cd.opening(d, 3) == d).all() and cd.smallest_region(d) == (3, 3)
    d[0, 0, 7, 0] = True  # a stray unit, and a 2 x 2 block clipped by the border is not a 3 x 3 block either
    assert not (cd.opening(d, 3) == d).all()


def test_practice_questions_accept_the_answers_and_reject_others():
    from autograde.probe import run_plan as probe

    def grade(name, value):
        c = checks.get(name)
        plan = checks.make_plan(c, "cpu", 1)
        return checks.judge(c, plan, probe(plan, value)).passed

    assert grade("cnn_dropout.q1", "b") and grade("cnn_dropout.q1", " B ") and not grade("cnn_dropout.q1", "a")
    assert grade("cnn_dropout.q2", 128) and not grade("cnn_dropout.q2", 8 * 16 * 32 * 32)
    assert grade("cnn_dropout.q3", "c") and grade("cnn_dropout.q5", "a")
    assert grade("cnn_dropout.q4", 0.2 / 9 * 36 / 16) and not grade("cnn_dropout.q4", 0.2)
    assert not grade("cnn_dropout.q4", "0.05 maybe") and not grade("cnn_dropout.q4", None)
    # Numbers of any real type, within 1e-6 (relative above 1), as the assignment's text says.
    from fractions import Fraction

    for value in (np.float32(0.05), np.float64(0.05), Fraction(1, 20), "0.05", " 0.05 ", 0.05 + 9e-7):
        assert grade("cnn_dropout.q4", value), value
    for value in (0.05 + 2e-6, True, [0.05], np.array([0.05])):
        assert not grade("cnn_dropout.q4", value), value
    for value in (np.int64(128), np.int32(128), 128.0, Fraction(128), "128", 128 + 1e-4):
        assert grade("cnn_dropout.q2", value), value
    assert not grade("cnn_dropout.q2", 128 + 1e-3) and not grade("cnn_dropout.q2", "b")
    assert grade("cnn_dropout.q1", "\tB\n") and not grade("cnn_dropout.q1", "(b)") and not grade("cnn_dropout.q1", 2)


def test_missing_function_fails_with_reason():
    assert "not defined" in run("dropblock2d.contract", None, 1).feedback()
    assert "not defined" in run("dropout2d.sharing", None, 1).feedback()


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")
