"""Running one check on a function in this process, as the check-module tests do (no kernel, no notebook).

Every test_checks_<topic>.py runs its correct and buggy implementations over the same grader SEEDS.
"""

from autograde import checks

SEEDS = (11, 2024, 987654321)


def target_checks(targets) -> dict[str, list[str]]:
    """target -> the names of every registered check aimed at it."""
    return {t: [n for n, c in checks.registry().items() if c.target == t] for t in targets}


def run(name: str, fn, seed: int, device: str = "cpu"):
    """Plan check ``name`` for ``seed``, probe ``fn`` with it and return the verdict (a CheckResult)."""
    c = checks.get(name)
    plan = checks.make_plan(c, device, seed)
    return checks.judge(c, plan, checks.probe_here(c, plan, fn))


def assert_passes(fn, names, seeds=SEEDS, device: str = "cpu", runner=run) -> None:
    """A correct implementation passes every check in ``names`` for every seed."""
    for seed in seeds:
        for name in names:
            result = runner(name, fn, seed, device)
            assert result.passed, f"{name}, seed {seed}, {device}:\n{result.feedback()}"


def assert_fails(fn, key: str, names, seeds=SEEDS, runner=run) -> None:
    """A buggy implementation fails every check aimed at its mistake, for every seed, with a message."""
    for seed in seeds:
        for name in names:
            result = runner(name, fn, seed)
            assert not result.passed, f"{key} passed {name} with seed {seed}"
            assert any(p.message for p in result.properties if p.status == "fail")


def assert_round_trip(name: str, fn, folder, seed: int = 3):
    """Check ``name``'s plan and ``fn``'s raw records survive the .json/.npz files the grader passes
    between processes (no pickle), and the verdict on the reloaded records passes. Returns them."""
    from autograde.probe import Plan, Raw

    c = checks.get(name)
    plan = checks.make_plan(c, "cpu", seed)
    plan.save(folder / "p")
    loaded = Plan.load(folder / "p")
    assert loaded.to_json() == plan.to_json()
    raw = checks.probe_here(c, loaded, fn)
    raw.save(folder / "r")
    back = Raw.load(folder / "r", loaded)
    assert back.calls == raw.calls and back.arrays.keys() == raw.arrays.keys()
    assert checks.judge(c, loaded, back).passed
    return back
