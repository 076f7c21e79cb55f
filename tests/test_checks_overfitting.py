"""Assignment 01's checks against implementations written in the test suite.

The graded objects (``l2_penalty``, ``EarlyStopping``, ``max_norm_``) are deterministic, so their checks
compare with values computed from the plan's inputs and have no false-failure probability at all.
Correct implementations written in different ways must pass every check over several grader seeds
(the seeds change the inputs: random parameter lists, weights, max_norm values and loss scripts);
each buggy one must fail the check aimed at its mistake, for every seed.
"""

import pytest

from autograde import checks
from tests.checking import SEEDS, assert_passes, assert_round_trip, run, target_checks
from tests.implementations.overfitting import ALL, ANSWERS, WRONG_ANSWERS, load

TARGETS = ("l2_penalty", "EarlyStopping", "max_norm_")
TARGET_CHECKS = target_checks(TARGETS)


def test_every_target_has_a_visible_and_a_hidden_check():
    assert {t: sorted(n.split(".")[1] for n in names) for t, names in TARGET_CHECKS.items()} == {
        "l2_penalty": ["contract", "safety"],
        "EarlyStopping": ["contract", "more"],
        "max_norm_": ["contract", "safety"],
    }


def test_enough_implementations_per_requirement():
    for target in TARGETS:
        impls = [i for i in ALL if i.target == target]
        assert sum(i.correct for i in impls) >= 4 and sum(not i.correct for i in impls) >= 10, target
        for name in TARGET_CHECKS[target]:
            assert any(name in i.fails for i in impls), f"no buggy implementation is aimed at {name}"


@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_gets_full_marks(impl):
    fn = load(impl)
    for seed in SEEDS:
        for name in TARGET_CHECKS[impl.target]:
            result = run(name, fn, seed)
            assert result.passed, f"seed {seed}, {name}:\n{result.feedback()}"


@pytest.mark.parametrize("impl", [i for i in ALL if not i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_buggy_implementation_loses_points(impl):
    fn = load(impl)
    for seed in SEEDS:
        for name in impl.fails:
            result = run(name, fn, seed)
            assert not result.passed, f"{impl.key} passed {name} with seed {seed}"
            assert all(p.message for p in result.properties if p.status == "fail")


@pytest.mark.parametrize(
    "key, words",
    [
        ("no_half", "twice the expected"),
        ("weights_only", "biases left out"),
        ("iterates_twice", "iterated twice"),
        ("peeks_first", "first tensor was missing"),
        ("uses_len", "no len()"),
        ("mean", "mean instead of sum"),
        ("detached", "backward failed"),
        ("squares_in_place", "parameters were modified"),
        ("float32_cast", "float64"),
        ("no_valueerror", "ValueError for weight_decay = -0.1"),
    ],
)
def test_l2_messages_name_the_mistake(key, words):
    impl = next(i for i in ALL if i.key == key and i.target == "l2_penalty")
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in sorted(impl.fails))
    assert words in feedback


@pytest.mark.parametrize(
    "key, words",
    [
        ("stops_early", "stops one call early"),
        ("stops_late", "stops one call late"),
        ("reference_not_copy", "a reference to the live tensors"),
        ("shallow_dict_copy", "deep copy"),
        ("ignores_min_delta", "min_delta is ignored"),
        ("ties_improve", "<= instead of <"),
        ("never_resets", "never reset"),
        ("restores_nothing", "does not load anything"),
        ("saves_every_call", "only when the loss improves"),
        ("one_based_epoch", "0-based"),
        ("best_is_minimum", "only on an improvement"),
        ("returns_none", "must return True or False"),
        ("weight_only", "bias was not restored"),
        ("first_call_always_improves", "no call has improved yet (inf and NaN never improve)"),
        ("nan_improves", "no call has improved yet (inf and NaN never improve)"),
        ("restore_without_guard", "nothing to restore: leave the model as it is"),
    ],
)
def test_early_stopping_messages_name_the_mistake(key, words):
    impl = next(i for i in ALL if i.key == key and i.target == "EarlyStopping")
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in sorted(impl.fails))
    assert words in feedback


@pytest.mark.parametrize(
    "key, words",
    [
        ("columns", "columns were renormalised instead of rows"),
        ("all_rows", "also rows inside the ball"),
        ("not_in_place", "new tensor returned"),
        ("global_norm", "whole matrix"),
        ("to_one", "scaled to norm 1"),
        ("squared_scale", "squared norm"),
        ("no_grad_missing", "torch.no_grad()"),
        ("nan_for_zero_row", "NaN"),
        ("clips_entries", "clipped one by one"),
        ("returns_none", "same tensor object"),
        ("epsilon_too_large", "must be scaled to norm max_norm"),
    ],
)
def test_max_norm_messages_name_the_mistake(key, words):
    impl = next(i for i in ALL if i.key == key and i.target == "max_norm_")
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in sorted(impl.fails))
    assert words in feedback


@pytest.mark.parametrize("variable", sorted(ANSWERS))
def test_practice_answers(variable):
    name = f"{variable}.overfitting"
    assert run(name, ANSWERS[variable], 1).passed
    assert run(name, str(ANSWERS[variable]).upper() + " ", 1).passed  # case and spaces do not matter
    wrong = run(name, WRONG_ANSWERS[variable], 1)
    assert not wrong.passed and "is not right" in wrong.feedback()
    assert "not defined" in run(name, None, 1).feedback()


def test_a_number_answer_may_be_any_real_type():
    from fractions import Fraction

    import numpy as np

    for value in (3, 3.0, np.int64(3), np.float32(3), Fraction(3, 1), " 3 ", 3 + 1e-7):
        assert run("answer_q3.overfitting", value, 1).passed, value
    for value in (3.01, True, "three", [3]):
        assert not run("answer_q3.overfitting", value, 1).passed, value


def test_records_cross_a_process_boundary_unchanged(tmp_path):
    """Scenario facts (lists, numbers, tensors) survive the .json/.npz round trip the grader uses."""
    impl = next(i for i in ALL if i.key == "deepcopy_state")
    assert_round_trip("EarlyStopping.more", load(impl), tmp_path)


def test_missing_and_unimplemented_fail_with_reason():
    def not_yet(*args, **kwargs):
        raise NotImplementedError()

    for name in ("l2_penalty.contract", "EarlyStopping.contract", "max_norm_.contract"):
        assert "not defined" in run(name, None, 1).feedback()
        assert "not implemented yet" in run(name, not_yet, 1).feedback()


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")


def test_student_entry_point_raises_assertion_with_feedback(capsys):
    good = load(next(i for i in ALL if i.key == "clamp_scale"))
    checks.check("max_norm_.contract", good, device="cpu")
    assert "✓" in capsys.readouterr().out
    bad = load(next(i for i in ALL if i.key == "columns"))
    with pytest.raises(AssertionError, match="columns"):
        checks.check("max_norm_.contract", bad, device="cpu")
