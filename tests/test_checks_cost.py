"""Assignment 09's checks against implementations written in the test suite.

Correct implementations written in different ways must pass every check of their target over several
grader seeds; each buggy one must fail the check aimed at its mistake, for every seed. A correct answer
fails a check by chance with probability at most ``stats.FALSE_FAILURE_PER_CHECK`` (1e-6).
"""

import numpy as np
import pytest
import torch

from autograde import checks
from autograde.checks import cost
from tests.checking import assert_fails, assert_passes, assert_round_trip, run, target_checks
from tests.implementations.cost import ALL, LEANS, PACKED, UNPACKS, load

TARGETS = ("packed_mask", "unpack_mask", "lean_dropout")
TARGET_CHECKS = target_checks(TARGETS)


def impl(target, key):
    return next(i for i in ALL if i.target == target and i.key == key)


def test_the_suite_meets_the_course_minimums():
    for group in (PACKED, UNPACKS, LEANS):
        assert sum(i.correct for i in group) >= 4, group[0].target
        assert sum(not i.correct for i in group) >= 8, group[0].target
    # every check is aimed at by at least one buggy implementation
    aimed = set().union(*(i.fails for i in ALL))
    assert aimed == {n for names in TARGET_CHECKS.values() for n in names}


@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_gets_full_marks(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target])


@pytest.mark.parametrize("impl", [i for i in ALL if not i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_buggy_implementation_loses_points(impl):
    assert_fails(load(impl), impl.key, impl.fails)


MESSAGES = [
    ("packed_mask", "big_endian", "big-endian order"),
    ("packed_mask", "last_byte_lost", "the last partial byte was lost"),
    ("packed_mask", "ones_padding", "unused high bits of the last byte must be 0"),
    ("packed_mask", "random_padding", "must be 0"),
    ("packed_mask", "swapped", "keep and drop look swapped"),
    ("packed_mask", "one_byte_per_entry", "that is a bool mask, not a packed one"),
    ("packed_mask", "int64_bytes", "expected dtype torch.uint8"),
    ("packed_mask", "one_draw_per_byte", "whole bytes are kept or dropped together"),
    ("packed_mask", "same_every_call", "the same mask comes back every call"),
    ("packed_mask", "ignores_generator", "generators seeded alike gave different masks"),
    ("unpack_mask", "big_endian", "big-endian order"),
    ("unpack_mask", "last_byte_lost", "the last partial byte was lost"),
    ("unpack_mask", "flipped", "every entry is flipped"),
    ("unpack_mask", "no_valueerror", "expected ValueError when packed does not hold exactly"),
    ("unpack_mask", "rejects_dirty_padding", "unused bits ignored"),
    ("unpack_mask", "shifts_in_place", "the packed tensor was modified"),
    ("lean_dropout", "different_seed_in_backward", "the backward pass used a different mask"),
    ("lean_dropout", "global_generator_in_backward", "the backward pass used a different mask"),
    ("lean_dropout", "saves_the_mask", "a bool mask"),
    ("lean_dropout", "mask_on_ctx", "attribute keep of"),
    ("lean_dropout", "global_cache", "kept alive outside autograd"),
    ("lean_dropout", "saves_packed_mask", "a packed mask: smaller, but it still grows with x"),
    ("lean_dropout", "saves_generator_state", "the generator's whole state"),
    ("lean_dropout", "saves_the_input", "the input x"),
    ("lean_dropout", "seed_on_the_class", "Store it on ctx"),
    ("lean_dropout", "plain_autograd", "no custom torch.autograd.Function"),
    ("lean_dropout", "manual_seed_global", "torch.manual_seed inside the function"),
    ("lean_dropout", "nan_at_p1", "NaN"),
    ("lean_dropout", "zeros_without_gradient", "x received no gradient"),
    ("lean_dropout", "drops_in_eval", "must not drop at evaluation"),
    ("lean_dropout", "no_scaling", "divides the survivors by q"),
    ("lean_dropout", "in_place_without_grad", "the input tensor was modified"),
    ("lean_dropout", "float32_output", "float64"),
    ("lean_dropout", "same_every_call", "the same mask comes back every call"),
    ("packed_mask", "own_generator_when_none", "right after the same torch.manual_seed"),
    ("unpack_mask", "numel_only", "not a 1-D tensor"),
    ("lean_dropout", "own_seed_when_none", "right after the same torch.manual_seed"),
]


@pytest.mark.parametrize("target, key, words", MESSAGES, ids=lambda v: str(v))
def test_messages_name_the_mistake(target, key, words):
    i = impl(target, key)
    feedback = "\n".join(run(n, load(i), 5).feedback() for n in sorted(i.fails))
    assert words in feedback, feedback


def test_what_the_memory_scenario_sees():
    """The correct answer keeps nothing; each way of keeping a mask is found, with its size."""
    facts = cost.lean_memory_scenario(load(impl("lean_dropout", "seed_on_ctx")), torch.ones(8, 16), torch.ones(64, 64),
                                      torch.ones(8, 16), torch.ones(64, 64))
    assert facts["kept_small"] == [] and facts["kept_big"] == [] and facts["custom_function"]
    for key, where, dtype, nbytes in (("saves_the_mask", "saved for backward", "bool", 64 * 64),
                                      ("mask_on_ctx", "attribute keep", "bool", 64 * 64),
                                      ("global_cache", "kept alive outside autograd", "bool", 64 * 64),
                                      ("saves_packed_mask", "saved for backward", "uint8", 64 * 64 // 8),
                                      ("seed_tensor_saved", "saved for backward", "int64", 8)):
        facts = cost.lean_memory_scenario(load(impl("lean_dropout", key)), torch.ones(8, 16), torch.ones(64, 64),
                                          torch.ones(8, 16), torch.ones(64, 64))
        (record,) = facts["kept_big"]
        assert where in record["where"] and record["dtype"] == dtype and record["bytes"] == nbytes, (key, record)


def test_packing_helpers_follow_numpy_little_bit_order():
    mask = np.array([1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1], dtype=bool)
    packed = cost.pack_little(mask)
    assert packed.tolist() == [5, 7] and np.array_equal(cost.unpack_little(packed, 11), mask)
    assert cost.packed_bytes((3, 5)) == 2 and cost.packed_bytes((8,)) == 1 and cost.packed_bytes((4, 5, 6)) == 15


@pytest.mark.parametrize("name", ["lean_dropout.memory", "lean_dropout.safety", "unpack_mask.contract"])
def test_scenario_records_cross_a_process_boundary_unchanged(tmp_path, name):
    """Scenario facts (arrays and JSON values) survive the .json/.npz round trip, with no pickle."""
    target = checks.get(name).target
    assert_round_trip(name, load(next(i for i in ALL if i.target == target and i.correct)), tmp_path)


@pytest.mark.parametrize("q, right", [(1, "c"), (2, "a"), (3, "b"), (4, "c"), (5, "d")])
def test_practice_answers(q, right):
    name = f"answer_q{q}.cost"
    assert run(name, right, 1).passed and run(name, f" {right.upper()} ", 1).passed
    wrong = next(a for a in "abcd" if a != right)
    result = run(name, wrong, 1)
    assert not result.passed and "chapter 9" in result.feedback()


def test_missing_function_and_release_stub_fail_with_a_reason():
    assert "not defined" in run("lean_dropout.memory", None, 1).feedback()

    def stub(*args, **kwargs):
        raise NotImplementedError()

    for name in ("packed_mask.contract", "unpack_mask.contract", "lean_dropout.contract", "lean_dropout.memory"):
        assert "not implemented yet" in run(name, stub, 1).feedback(), name


def test_cuda_is_skipped_with_a_note_on_cpu():
    result = run("lean_dropout.contract", load(impl("lean_dropout", "seed_on_ctx")), 1)
    skipped = [p for p in result.properties if p.status == "skip"]
    assert result.passed and skipped and "CPU only" in skipped[0].message


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")
