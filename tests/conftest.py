"""Shared fixtures. Tests run on the CPU; CUDA tests skip with a note when no GPU is present."""

from pathlib import Path

import pytest

import autograde  # noqa: F401 - first: its __init__ keeps jsonschema from compiling a grammar (3 s per process)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


# A machine running more than this many runnable processes per core (the 1-minute load average) is
# "loaded": make test's own two workers and their kernels stay below it on the 2-core reference machine.
LOADED_PER_CORE = 2.0


def pytest_runtest_setup(item):
    """Tests whose verdict depends on wall-clock speed run only on a machine that is not already loaded."""
    import os

    if "timing" in item.keywords:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        if load > LOADED_PER_CORE * cores:
            pytest.skip(f"the machine is loaded (load average {load:.1f} on {cores} cores): wall-clock speed is not tested now")


# The test files that take longest, longest first (seconds each took under `make test`'s load in a fresh
# clone, 2026-12-05: the book build about 860 and the browser's visits after it, then export 650, checks_cost
# 410, grade_notebook 410, batch 320, hostile 280, checks_robustness 270, observed_rates 220, release 170,
# faults 160). `make test` passes --no-loadscope-reorder so that pytest-xdist starts the files in this order:
# by default it starts the files with the most tests first, which started the book build (the longest chain:
# the build, then the browser's visits of the built pages) nine minutes into the run, and the whole run
# waited on it at the end. test_browser.py waits for the build test_book.py starts (conftest's lock).
SLOWEST_FIRST = [
    "test_book.py", "test_browser.py", "test_export.py", "test_checks_cost.py", "test_grade_notebook.py",
    "test_batch.py", "test_hostile.py", "test_checks_robustness.py", "test_observed_rates.py", "test_release.py",
    "test_faults.py", "test_checks_bernoulli_masks.py", "test_checks_cnn_dropout.py", "test_checks_beyond.py",
    "test_checks_ensemble.py", "test_checks_inverted_dropout.py",
]


def pytest_collection_modifyitems(config, items):
    import torch

    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the order within a file is kept
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine: CUDA paths are tested on a GPU machine only")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def built_book() -> Path:
    """_build/html, built once per test run with warnings as errors (execution cached in _build/.jupyter_cache).

    tests/test_book.py and tests/test_browser.py both need it, and `make test` runs them on different
    xdist workers at the same time. A file lock keeps two builds from writing _build/html at once, and
    a worker that finds the build already done in this same run (by pytest-xdist's run id) reuses it.
    """
    import fcntl
    import os
    import subprocess
    import sys

    if not (ROOT / "book" / "_static" / "vendor" / "html-manager" / "embed.js").exists():
        pytest.fail("the ipywidgets HTML manager is missing from book/_static/vendor: run the tests with 'make test', which installs it")
    build = ROOT / "_build"
    build.mkdir(exist_ok=True)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    stamp = build / ".built-by-test-run"
    jb = Path(sys.executable).parent / "jupyter-book"
    with open(build / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == run_id:
            return build / "html"
        stamp.unlink(missing_ok=True)
        proc = subprocess.run([str(jb), "build", ".", "-W", "-n", "--keep-going"], cwd=ROOT, capture_output=True,
                              text=True, timeout=1800)
        assert proc.returncode == 0, "book build failed:\n" + proc.stdout[-4000:] + proc.stderr[-4000:]
        stamp.write_text(run_id)
    return build / "html"
