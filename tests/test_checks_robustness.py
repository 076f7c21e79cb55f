"""No verdict crashes on what a submission returned: every check's verdict, fed malformed records, fails with a
message instead of raising.

``autograde.checks.judge`` turns an exception inside a verdict into a failed "judged" property, so grading
never stops; but that message only says the grader could not judge. Here no verdict may get that far: each
record made wrong in one way (``tests/malformed.py``: a call missing or with another status, an output of the
wrong kind, an array of the wrong shape, dtype or size or full of NaN, a scenario fact missing or of the wrong
type, a timing that is not numbers) must be judged, and every failure must say what was wrong.

A call the plan makes is there to be judged, so a record of it that says nothing usable (absent, raised, not
run, an output of the wrong kind) must fail the check. Arrays and facts are many, and a check reads only those
its properties need (the cell's scenario feeds two checks, each reading part of it), so a wrong array or fact
must never crash a verdict, and fail it with a message when it does, but need not always change its result.
"""

import functools
import warnings

import pytest

from autograde import checks
from tests.implementations import (bernoulli_masks, beyond, cnn_dropout, cost, ensemble, in_practice, inverted_dropout,
                                   overfitting, rnn_dropout)
from tests.malformed import mutations

MODULES = (bernoulli_masks, beyond, cnn_dropout, cost, ensemble, in_practice, inverted_dropout, overfitting, rnn_dropout)
ANSWERS = ("a", "b", "c", "d", 3, 128, 3200, 0.05)  # one of them is each practice question's answer
SAYS_NOTHING = ("absent", "missing", "raised", "not callable", "invalid", "unavailable", "probe error",
                "unknown status", "returned None", "a scenario without facts")


def _correct(target):
    for module in MODULES:
        impls = module.ALL if hasattr(module, "ALL") else module.all_impls()
        for impl in impls:
            if impl.target == target and impl.correct:
                return module.load(impl)
    return None


@functools.lru_cache(maxsize=None)
def _records(name):
    """The plan of check ``name`` and the records of a correct submission, which passes it."""
    c = checks.get(name)
    plan = checks.make_plan(c, "cpu", 5)
    fn = _correct(c.target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for value in [fn] if fn is not None else ANSWERS:
            raw = checks.probe_here(c, plan, value)
            if checks.judge(c, plan, raw).passed:
                return c, plan, raw
    raise AssertionError(f"no correct submission passes {name}")


def _judge_all(name, batch):
    c, plan, raw = _records(name)
    silent = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's divide-by-zero warnings on garbage arrays are expected
        for label, bad in batch(plan, raw):
            result = checks.judge(c, plan, bad)
            assert result.crashed is None and not any(p.name == "judged" for p in result.properties), \
                f"{name}, {label}: the verdict raised {result.crashed}"
            assert all(p.message for p in result.properties if p.status == "fail"), \
                f"{name}, {label}: a failure without a message"
            if label.split(": ", 1)[1].startswith(SAYS_NOTHING) and result.passed:
                silent.append(label)
    assert not silent, f"{name}: calls whose record says nothing usable, yet the check passed: {silent}"


def _unusable(plan, raw):
    """Each call's record made useless two ways: absent, and an output of the wrong kind."""
    for label, bad in mutations(plan, raw, thorough=False):
        if label.endswith((": absent", ": returned None", ": a scenario without facts")):
            yield label, bad


@pytest.mark.parametrize("name", sorted(checks.registry()))
def test_every_call_is_judged(name):
    _judge_all(name, _unusable)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(checks.registry()))
def test_every_malformed_record_fails_with_a_message_and_never_crashes(name):
    _judge_all(name, lambda plan, raw: mutations(plan, raw, thorough=False))
