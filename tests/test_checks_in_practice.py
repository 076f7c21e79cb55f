"""Assignment 08's checks against the broken originals, repairs written differently, and wrong repairs.

Per task: the broken original from the solution notebook's read-only cell must fail the visible check;
two repairs written differently must pass every check over three grader seeds; a wrong repair that moves
the bug elsewhere (and a few other wrong ones) must fail the checks aimed at it, with a message. A correct
answer fails a check by chance with probability at most 1e-6 (``autograde.stats``).
"""

import pytest
import torch

from autograde import checks
from tests.checking import assert_fails, assert_passes, assert_round_trip, run, target_checks
from tests.implementations.in_practice import TARGETS, WRITTEN, all_impls, broken_sources, load, originals

TARGET_CHECKS = target_checks(TARGETS)
ALL = all_impls()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors are tiny: a second intra-op thread only adds synchronisation. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_task_has_an_original_two_repairs_and_a_wrong_repair():
    assert set(broken_sources()) == set(TARGETS)
    for t in TARGETS:
        impls = [i for i in ALL if i.target == t]
        assert sum(i.correct for i in impls) >= 2, t
        assert sum(not i.correct and i.key != "original" for i in impls) >= 1, t
        assert set(TARGET_CHECKS[t]) == {f"{t}.fixed", f"{t}.contract"}, t


@pytest.mark.parametrize("impl", [i for i in WRITTEN if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_repair_passes_every_check(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target])


@pytest.mark.parametrize("impl", [i for i in ALL if not i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_original_and_wrong_repairs_fail_the_checks_aimed_at_them(impl):
    assert_fails(load(impl), impl.key, impl.fails)


MESSAGES = [
    ("train_and_validate", "original", "validation passes ran in training mode"),
    ("train_and_validate", "eval_never_back", "call model.train() again"),
    ("train_and_validate", "returns_tensors", "use .item()"),
    ("Classifier", "original", "pass training=self.training"),
    ("Classifier", "module_in_forward", "a module made inside forward is always in training mode"),
    ("Classifier", "renamed_layer", "checkpoint does not load"),
    ("ScaledMLP", "original", "double scaling"),
    ("ScaledMLP", "classic", "classic dropout's training output"),
    ("BatchNormMLP", "original", "variance shift"),
    ("BatchNormMLP", "dropout_on_input", "variance shift"),
    ("mc_predict", "original", "batch normalization is in training mode"),
    ("mc_predict", "not_restored", "restore it after"),
    ("mc_predict", "same_mask", "one mask reused for every sample"),
    ("SequenceDropout", "original", "device=x.device"),
    ("SequenceDropout", "original", "dtype=x.dtype"),
    ("SequenceDropout", "cached_buffer", "cached, for example as a buffer"),
    ("SequenceDropout", "per_step", "(B, 1, F) broadcast over time"),
    ("PortedNet", "original", "keep and drop look swapped"),
    ("PortedNet", "divides_by_rate", "division by zero"),
]


@pytest.mark.parametrize("target, key, words", MESSAGES, ids=lambda v: str(v))
def test_messages_name_the_mistake(target, key, words):
    impl = next(i for i in ALL if i.key == key and i.target == target)
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in sorted(impl.fails))
    assert words in feedback, feedback


def test_broken_original_passes_nothing_it_should_not():
    """Each original's bug is exactly its task's: the parts of the contract it does not touch still hold.

    (If an original failed everywhere, the task would not be a diagnosis of one bug.)"""
    holds = {
        "train_and_validate": {"training steps in train mode", "returns one accuracy per epoch"},
        "Classifier": {"loads the checkpoint", "drop rate at p=0.3", "kept values are h / q at p=0.3"},
        "ScaledMLP": {"loads the checkpoint", "drop rate at p=0.3", "kept values are h / q at p=0.3"},
        "BatchNormMLP": {"loads the checkpoint"},
        "mc_predict": set(),
        "SequenceDropout": {"evaluation returns x"},
        "PortedNet": {"loads the checkpoint"},
    }
    for impl in originals():
        result = run(f"{impl.target}.fixed", load(impl), 7)
        passed = {p.name for p in result.properties if p.status == "pass"}
        assert holds[impl.target] <= passed, (impl.target, result.feedback())


@pytest.mark.parametrize("name", ["mc_predict.fixed", "train_and_validate.fixed", "SequenceDropout.fixed"])
def test_scenario_records_cross_a_process_boundary_unchanged(tmp_path, name):
    """Scenario facts (arrays and JSON values) survive the .json/.npz round trip, with no pickle."""
    target = checks.get(name).target
    impl = next(i for i in WRITTEN if i.target == target and i.correct)
    assert_round_trip(name, load(impl), tmp_path)


@pytest.mark.parametrize("q, right", [(1, "b"), (2, "a"), (3, "c"), (4, "d"), (5, "b")])
def test_practice_answers(q, right):
    name = f"answer_q{q}.in_practice"
    assert run(name, right, 1).passed and run(name, f" {right.upper()} ", 1).passed
    wrong = next(a for a in "abcd" if a != right)
    result = run(name, wrong, 1)
    assert not result.passed and "Practice questions" in result.feedback()


def test_cuda_is_skipped_with_a_note_on_cpu():
    impl = next(i for i in WRITTEN if i.target == "SequenceDropout" and i.correct)
    result = run("SequenceDropout.fixed", load(impl), 1)
    skipped = [p for p in result.properties if p.status == "skip"]
    assert result.passed and skipped and "CPU only" in skipped[0].message


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in WRITTEN if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_repair_passes_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")


@pytest.mark.cuda
def test_original_sequence_dropout_fails_on_cuda():
    impl = next(i for i in originals() if i.target == "SequenceDropout")
    result = run("SequenceDropout.fixed", load(impl), 7, "cuda")
    assert not result.passed and "same device" in result.feedback()
