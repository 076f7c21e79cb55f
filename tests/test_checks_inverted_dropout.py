"""Assignment 04's checks against implementations written in the test suite.

Correct implementations written in different ways must pass every check of their target over several
grader seeds; each buggy one must fail the check that targets its mistake, for every seed. A correct
answer fails a check by chance with probability at most ``stats.FALSE_FAILURE_PER_CHECK`` (1e-6).
"""

import pytest

from autograde import checks
from tests.checking import assert_fails, assert_passes, assert_round_trip, run, target_checks
from tests.implementations.inverted_dropout import ALL, INVERTED, MODULES, SCALERS, load

TARGETS = ("dropout_inverted", "Dropout", "scale_for_inference")
TARGET_CHECKS = target_checks(TARGETS)


def test_the_suite_meets_the_course_minimums():
    for group, random in ((INVERTED, True), (MODULES, True), (SCALERS, False)):
        correct = [i for i in group if i.correct]
        buggy = [i for i in group if not i.correct]
        assert len(correct) >= 4 and (len(buggy) >= 10 or not random), group[0].target
    assert set(TARGET_CHECKS["dropout_inverted"]) == {"dropout_inverted.contract", "dropout_inverted.safety"}


@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_gets_full_marks(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target])


@pytest.mark.parametrize("impl", [i for i in ALL if not i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_buggy_implementation_loses_points(impl):
    assert_fails(load(impl), impl.key, impl.fails)


MESSAGES = [
    ("dropout_inverted", "no_scaling", "that is classic dropout's training output"),
    ("dropout_inverted", "scale_by_q", "multiply by 1 / q, not by q"),
    ("dropout_inverted", "divide_by_p", "not by the drop probability p"),
    ("dropout_inverted", "swapped", "keep and drop look swapped"),
    ("dropout_inverted", "nan_at_p1", "NaN"),
    ("dropout_inverted", "drops_in_eval", "must return x unchanged at evaluation"),
    ("dropout_inverted", "scales_in_eval", "that is classic dropout's evaluation rule"),
    ("dropout_inverted", "same_every_call", "same mask comes back every call"),
    ("dropout_inverted", "one_mask_for_batch", "shared by every row"),
    ("dropout_inverted", "in_place", "modified"),
    ("dropout_inverted", "ignores_generator", "generator"),
    ("dropout_inverted", "float32_output", "float64"),
    ("dropout_inverted", "numpy_detached", "detached"),
    ("Dropout", "functional_default_training", "pass training=self.training"),
    ("Dropout", "own_flag", "nn.Sequential holding the module"),
    ("Dropout", "p_parameter", "not an nn.Parameter"),
    ("Dropout", "valueerror_in_forward", "ValueError when constructing"),
    ("Dropout", "mask_cached", "same mask comes back on every forward pass"),
    ("Dropout", "one_mask_for_batch", "shared by every example"),
    ("Dropout", "in_place", "modified its input in place"),
    ("Dropout", "detached", "detached"),
    ("Dropout", "classic", "classic dropout's evaluation rule"),
    ("scale_for_inference", "scales_biases", "biases were scaled too"),
    ("scale_for_inference", "scales_first_layer", "first nn.Linear was scaled too"),
    ("scale_for_inference", "scales_by_p", "scale by the keep probability"),
    ("scale_for_inference", "divides_by_q", "divided by q"),
    ("scale_for_inference", "in_place", "the model passed in was modified and returned the same object"),
    ("scale_for_inference", "unchanged", "left unscaled"),
    ("scale_for_inference", "float32_rebuild", "dtype and device"),
    ("Dropout", "eval_override_sticks", "do not override eval() or train()"),
    ("Dropout", "where_nan_grad", "contains NaN"),
    ("dropout_inverted", "where_nan_grad", "back-propagates 0 * inf"),
    ("dropout_inverted", "float32_factor", "to float64 precision"),
    ("dropout_inverted", "numpy_global_rng", "PyTorch's global random state"),
    ("scale_for_inference", "rebuild_new_relu", "a new nn.ReLU() loses the flag"),
    ("scale_for_inference", "returns_eval_mode", "the model passed in was in train() mode"),
]


@pytest.mark.parametrize("target, key, words", MESSAGES, ids=lambda v: str(v))
def test_messages_name_the_mistake(target, key, words):
    impl = next(i for i in ALL if i.key == key and i.target == target)
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in sorted(impl.fails))
    assert words in feedback, feedback


@pytest.mark.parametrize("name", ["Dropout.masks", "scale_for_inference.more"])
def test_scenario_records_cross_a_process_boundary_unchanged(tmp_path, name):
    """Scenario facts (arrays and JSON values) survive the .json/.npz round trip, with no pickle."""
    target = checks.get(name).target
    impl = next(i for i in ALL if i.target == target and i.correct)
    assert_round_trip(name, load(impl), tmp_path)


@pytest.mark.parametrize("q, right", [(1, "b"), (2, "c"), (3, "a"), (4, "d"), (5, "b")])
def test_practice_answers(q, right):
    name = f"answer_q{q}.inverted_dropout"
    assert run(name, right, 1).passed
    assert run(name, f" {right.upper()} ", 1).passed  # case and spaces do not matter
    wrong = next(a for a in "abcd" if a != right)
    result = run(name, wrong, 1)
    assert not result.passed and "Practice questions" in result.feedback()
    assert "has no answer yet" in run(name, None, 1).feedback() or "not defined" in run(name, None, 1).feedback()
    assert "plain value" in run(name, {1, 2}, 1).feedback()
    assert not run(name, f"({right})", 1).passed and not run(name, 2, 1).passed


def test_dropout_switched_directly_on_the_module_must_drop_again():
    """The clause "train() after eval() drops again" is checked on the module itself, not only through a parent:
    an eval() overridden to switch dropping off for good passes the parent check and fails this one alone."""
    impl = next(i for i in MODULES if i.key == "eval_override_sticks")
    result = run("Dropout.masks", load(impl), 3)
    failed = {p.name for p in result.properties if p.status == "fail"}
    assert failed == {"train() after eval() on the module itself drops again"}, result.feedback()
    assert run("Dropout.contract", load(impl), 3).passed


def test_missing_and_wrong_kinds_fail_with_a_reason():
    assert "not defined" in run("Dropout.contract", None, 1).feedback()
    assert "must be an nn.Module" in run("Dropout.contract", lambda p: object(), 1).feedback()
    assert "not defined" in run("scale_for_inference.contract", None, 1).feedback()


def test_cuda_is_skipped_with_a_note_on_cpu():
    impl = next(i for i in MODULES if i.correct)
    result = run("Dropout.contract", load(impl), 1)
    skipped = [p for p in result.properties if p.status == "skip"]
    assert result.passed and skipped and "CPU only" in skipped[0].message


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")


@pytest.mark.cuda
def test_output_left_on_cpu_fails_on_cuda():
    fn = load(next(i for i in INVERTED if i.key == "rand_div"))
    result = run("dropout_inverted.contract", lambda x, p, training=True, generator=None: fn(x.cpu(), p, training), 7, "cuda")
    assert not result.passed and "expected the output on cuda" in result.feedback()


def test_student_entry_point_raises_assertion_with_feedback(capsys):
    good = load(next(i for i in SCALERS if i.key == "deepcopy_loop"))
    checks.check("scale_for_inference.contract", good, device="cpu")
    assert "✓" in capsys.readouterr().out
    bad = load(next(i for i in SCALERS if i.key == "scales_biases"))
    with pytest.raises(AssertionError, match="biases were scaled too"):
        checks.check("scale_for_inference.contract", bad, device="cpu")
