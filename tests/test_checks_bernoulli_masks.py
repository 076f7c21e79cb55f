"""Assignment 02's checks against implementations written in the test suite.

Correct implementations written in different ways must pass every check over several grader seeds;
each buggy one must fail the check that targets its mistake, for every seed. A correct function fails a
check by chance with probability at most ``stats.FALSE_FAILURE_PER_CHECK`` (1e-6), so across this file's
runs the chance of a spurious red is below 1e-4.
"""

import pytest

from autograde import checks
from tests.checking import SEEDS, assert_passes, assert_round_trip, run, target_checks
from tests.implementations.bernoulli_masks import ALL, load

TARGET_CHECKS = target_checks(("bernoulli_mask", "dropout_standard"))


@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_gets_full_marks(impl):
    assert_passes(load(impl), [n for n in TARGET_CHECKS[impl.target] if not n.endswith(".speed")])


@pytest.mark.timing
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_is_fast_enough(impl):
    assert_passes(load(impl), [n for n in TARGET_CHECKS[impl.target] if n.endswith(".speed")])


def _timing_if_speed(impls):
    return [pytest.param(i, marks=pytest.mark.timing) if any(n.endswith(".speed") for n in i.fails) else i for i in impls]


@pytest.mark.parametrize("impl", _timing_if_speed([i for i in ALL if not i.correct]), ids=lambda i: f"{i.target}:{i.key}")
def test_buggy_implementation_loses_points(impl):
    fn = load(impl)
    seeds = SEEDS[:1] if "speed" in " ".join(impl.fails) else SEEDS
    for seed in seeds:
        for name in impl.fails:
            result = run(name, fn, seed)
            assert not result.passed, f"{impl.key} passed {name} with seed {seed}"
            assert any(p.message for p in result.properties if p.status == "fail")


@pytest.mark.parametrize(
    "key, words",
    [
        ("swapped", "keep and drop look swapped"),
        ("same_every_call", "same mask comes back every call"),
        ("one_row_for_batch", "shared by every row"),
        ("ignores_generator", "generator"),
        ("numpy_global_rng", "PyTorch's global random state"),
    ],
)
def test_mask_messages_name_the_mistake(key, words):
    impl = next(i for i in ALL if i.key == key and i.target == "bernoulli_mask")
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in impl.fails)
    assert words in feedback


@pytest.mark.parametrize(
    "key, words",
    [
        ("inverted", "that is inverted dropout"),
        ("no_eval_scaling", "must scale by q = 1 - p at evaluation"),
        ("drops_in_eval", "must not drop at evaluation"),
        ("nan_at_p1", "NaN"),
        ("in_place", "modified"),
        ("numpy_detached", "detached"),
        ("eval_scaled_by_p", "not by p"),
        ("valueerror_only_in_training", "p = -0.1: no exception"),
    ],
)
def test_dropout_messages_name_the_mistake(key, words):
    impl = next(i for i in ALL if i.key == key and i.target == "dropout_standard")
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in impl.fails)
    assert words in feedback


def test_records_cross_a_process_boundary_unchanged(tmp_path):
    """Plans and raw records survive the .json/.npz round trip the grader uses, with no pickle."""
    impl = next(i for i in ALL if i.key == "rand_mul")
    assert_round_trip("dropout_standard.safety", load(impl), tmp_path)


def test_missing_function_and_non_callable_fail_with_reason():
    assert "not defined" in run("bernoulli_mask.contract", None, 1).feedback()
    assert "not a function" in run("bernoulli_mask.contract", 42, 1).feedback()


def test_cuda_is_skipped_with_a_note_on_cpu():
    impl = next(i for i in ALL if i.key == "rand_ge")
    result = run("bernoulli_mask.contract", load(impl), 1)
    skipped = [p for p in result.properties if p.status == "skip"]
    assert result.passed and skipped and "CPU only" in skipped[0].message


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")


@pytest.mark.cuda
def test_mask_left_on_cpu_fails_on_cuda():
    fn = load(next(i for i in ALL if i.key == "rand_ge"))
    result = run("bernoulli_mask.contract", lambda shape, p, generator=None, device=None: fn(shape, p), 7, "cuda")
    assert not result.passed and "expected the output on cuda" in result.feedback()


def test_student_entry_point_raises_assertion_with_feedback(capsys):
    good = load(next(i for i in ALL if i.key == "rand_ge"))
    checks.check("bernoulli_mask.contract", good, device="cpu")
    assert "✓" in capsys.readouterr().out
    bad = load(next(i for i in ALL if i.key == "swapped" and i.target == "bernoulli_mask"))
    with pytest.raises(AssertionError, match="swapped"):
        checks.check("bernoulli_mask.contract", bad, device="cpu")
