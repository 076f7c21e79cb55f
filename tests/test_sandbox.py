"""The sandbox's command line: what the kernel can see when the course itself lives below /tmp.

A fresh clone made with ``mktemp -d`` puts the course, its ``.venv`` included, below /tmp, where the sandbox
mounts a private tmpfs. A bind listed before that tmpfs is hidden under it, and the kernel then finds no Python.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograde import sandbox


def _spec(tmp_path):
    box = tmp_path / "box"
    (box / "work").mkdir(parents=True)
    (box / "home").mkdir()
    return sandbox.Spec(box=box, memory_mb=None)


def test_a_python_installation_below_tmp_runs_in_the_sandbox(tmp_path, monkeypatch, request):
    """The course's packages, bound from a folder below /tmp, are importable inside the sandbox."""
    if sandbox.support()["error"]:
        pytest.skip(f"no sandbox here: {sandbox.support()['error']}")
    course = Path(tempfile.mkdtemp(prefix="course-", dir="/tmp"))  # below /tmp whatever TMPDIR says
    request.addfinalizer(lambda: shutil.rmtree(course, ignore_errors=True))
    (course / "pkg_below_tmp").mkdir()
    (course / "pkg_below_tmp" / "__init__.py").write_text("WHERE = 'below /tmp'\n")
    original = sandbox.python_paths
    monkeypatch.setattr(sandbox, "python_paths", lambda: [*original(), str(course)])
    code = f"import sys; sys.path.insert(0, {str(course)!r}); import pkg_below_tmp; print(pkg_below_tmp.WHERE)"
    proc = subprocess.run(sandbox.command([sys.executable, "-c", code], _spec(tmp_path)), capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "below /tmp", proc.stderr[-2000:]

