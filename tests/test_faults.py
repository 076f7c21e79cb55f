"""Broken, noisy, runaway and hostile submissions: each is graded for what works, nothing crashes.

Each test grades one notebook in a sandboxed kernel (about 12 s).
"""

import json
import socket
import subprocess
import sys

import nbformat
import pytest

from autograde.checks.bernoulli_masks_practice import ANSWERS
from tests.implementations.bernoulli_masks import ALL
from tests.notebooks import ROOT, submission, write

pytestmark = pytest.mark.slow
A = "02_bernoulli_masks"
IMPL = {(i.target, i.key): i.source for i in ALL}
MASK, DROP = IMPL["bernoulli_mask", "rand_ge"], IMPL["dropout_standard", "rand_mul"]
PRACTICE = {f"answer_{q}": f"answer_{q} = {ANSWERS[q][0][0]!r}" for q in ANSWERS}  # the five questions, all right
FUNCTIONS, MAX = 13, 18  # points for the two functions; the whole assignment with the practice questions


def grade(path, *args):
    proc = subprocess.run([sys.executable, "-m", "autograde", "grade", str(path), "--json", "--device", "cpu", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def scores(rep):
    return {t["grade_id"]: t["score"] for t in rep["tests"]}


def test_noise_on_stderr_and_warnings_is_never_punished(tmp_path):
    noisy = "import sys, warnings\nsys.stderr.write('debug output\\n' * 100)\nwarnings.warn('a warning students ignore')\n"
    mask = MASK.replace("    return", "    sys.stderr.write('called\\n'); warnings.warn('noisy')\n    return", 1)
    rep = grade(write(submission(A, {"bernoulli_mask": noisy + mask, "dropout_standard": DROP, **PRACTICE}), tmp_path, A))
    assert rep["score"] == rep["max_score"] == MAX


def test_output_flood_is_capped_and_graded(tmp_path):
    flood = "for _ in range(2000):\n    print('x' * 5000)\n"
    rep = grade(write(submission(A, {"bernoulli_mask": flood + MASK, "dropout_standard": DROP}), tmp_path, A), "--output-kb", "64")
    assert rep["score"] == FUNCTIONS and rep["max_score"] == MAX  # the practice questions are left unanswered
    assert any("dropped" in n for n in rep["notes"])


def test_memory_hog_is_stopped_and_the_rest_graded(tmp_path):
    hog = "import torch\nHOG = torch.ones(2_500_000_000)  # 10 GB\n"
    rep = grade(write(submission(A, {"bernoulli_mask": hog + MASK, "dropout_standard": DROP}), tmp_path, A), "--memory-mb", "1500")
    s = scores(rep)
    assert s["test_bernoulli_mask"] == 0 and s["test_dropout_standard"] == 3
    assert any("memory" in n.lower() or "alloc" in n.lower() for n in rep["notes"]), rep["notes"]


def test_empty_and_old_format_notebooks_are_graded(tmp_path):
    empty = nbformat.v4.new_notebook()
    rep = grade(write(empty, tmp_path, A))
    assert rep["score"] == 0 and rep["max_score"] == MAX  # test cells restored; functions and answers missing
    assert "not defined" in rep["tests"][0]["feedback"]
    v3 = nbformat.convert(submission(A, {"bernoulli_mask": MASK, "dropout_standard": DROP}), 3)
    old = tmp_path / "old" / f"{A}.ipynb"
    old.parent.mkdir()
    nbformat.write(v3, old, version=3)
    assert grade(old)["score"] == FUNCTIONS  # the practice questions are left unanswered


def test_sandbox_hides_solutions_and_the_network(tmp_path):
    """The answer raises if it could read the instructor's files, reach a local server, or write outside."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    spy = (
        "import os, socket\nLEAKS = []\n"
        f"for path in [{str(ROOT / 'solutions' / A / f'{A}.ipynb')!r}, {str(ROOT / 'autograde' / '..' / 'README.md')!r}]:\n"
        "    try:\n        open(path).read(10); LEAKS.append('read ' + path)\n    except OSError:\n        pass\n"
        f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2); LEAKS.append('tcp')\nexcept OSError:\n    pass\n"
        f"try:\n    open({str(tmp_path / 'escaped.txt')!r}, 'w').write('x'); LEAKS.append('write')\nexcept OSError:\n    pass\n"
    )
    mask = MASK.replace("    if not", "    if LEAKS:\n        raise RuntimeError(str(LEAKS))\n    if not", 1)
    rep = grade(write(submission(A, {"bernoulli_mask": spy + mask, "dropout_standard": DROP}), tmp_path, A))
    assert scores(rep)["test_bernoulli_mask"] == 3, rep["tests"][0]["feedback"]
    assert not (tmp_path / "escaped.txt").exists()
    server.close()
