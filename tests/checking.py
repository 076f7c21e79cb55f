"""Running one check on a function in this process, as the check-module tests do (no kernel, no notebook).

Every test_checks_<topic>.py runs its correct and buggy implementations over the same grader SEEDS.
"""

from autograde import checks
from autograde.probe import run_plan

SEEDS = (11, 2024, 987654321)


def target_checks(targets) -> dict[str, list[str]]:
    """target -> the names of every registered check aimed at it."""
    return {t: [n for n, c in checks.registry().items() if c.target == t] for t in targets}


def run(name: str, fn, seed: int, device: str = "cpu"):
    """Plan check ``name`` for ``seed``, probe ``fn`` with it and return the verdict (a CheckResult)."""
    c = checks.get(name)
    plan = checks.make_plan(c, device, seed)
    return checks.judge(c, plan, run_plan(plan, fn))
