"""Grading a class: parallel workers, resume after kill -9, the gradebook round trip, CSV, feedback."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autograde.checks.bernoulli_masks_practice import ANSWERS
from tests.implementations.bernoulli_masks import ALL
from tests.notebooks import ROOT, submission, write

pytestmark = pytest.mark.slow
A = "02_bernoulli_masks"
IMPL = {(i.target, i.key): i.source for i in ALL}
PRACTICE = {f"answer_{q}": f"answer_{q} = {ANSWERS[q][0][0]!r}" for q in ANSWERS}  # the five questions, all right
CLASS = {
    "ada": {"bernoulli_mask": IMPL["bernoulli_mask", "rand_ge"], "dropout_standard": IMPL["dropout_standard", "rand_mul"],
            **PRACTICE},
    "ben": {},
    "cy": {"bernoulli_mask": IMPL["bernoulli_mask", "swapped"], "dropout_standard": IMPL["dropout_standard", "where"]},
    "dee": {"bernoulli_mask": IMPL["bernoulli_mask", "where"], "dropout_standard": IMPL["dropout_standard", "inverted"]},
}
# Out of 18: 13 for the two functions, 1 for each practice question. Only ada answers the questions; the
# others keep the release's raise NotImplementedError() there and get 0 for them.
EXPECTED = {"ada": 18, "ben": 0, "cy": 10, "dee": 7}  # cy: swapped mask; dee: inverted fails contract and gradient


def make_class(root, broken=True):
    for student, answers in CLASS.items():
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        write(submission(A, answers), folder, A)
    if broken:
        (root / "submitted" / "eve" / A).mkdir(parents=True)
        (root / "submitted" / "eve" / A / f"{A}.ipynb").write_text("{ this is not json")
    return root


def batch(root, *args, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "autograde", "batch", str(root), "--device", "cpu", "--no-progress", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def results(root):
    return {p.parent.parent.name: json.loads(p.read_text()) for p in (root / "autograded").glob("*/*/result.json")}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    root = make_class(tmp_path_factory.mktemp("course"))
    db = f"sqlite:///{root / 'gradebook.db'}"
    out = batch(root, "--jobs", "2", "--db", db, "--csv", str(root / "grades.csv"), "--seed", "5")
    return root, db, out


def test_batch_grades_everyone_and_reports_the_broken_file(graded_class):
    root, _, out = graded_class
    res = results(root)
    assert {s: r["score"] for s, r in res.items() if s in EXPECTED} == EXPECTED
    assert "not a Jupyter notebook" in res["eve"]["error"]
    assert "graded 4" in out and "errors 1" in out and "slowest" in out


def test_gradebook_round_trip_through_nbgrader_export(graded_class):
    root, db, _ = graded_class
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "nbgrader"), "export", "--db", db, "--to", str(root / "export.csv")],
                   cwd=root, check=True, capture_output=True, env=env)
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(root / "export.csv"))}
    assert rows == {s: float(v) for s, v in EXPECTED.items()}


def test_csv_and_feedback(graded_class):
    root, _, _ = graded_class
    rows = {r["student"]: r for r in csv.DictReader(open(root / "grades.csv"))}
    assert float(rows["cy"]["score"]) == 10 and rows["cy"]["test_bernoulli_mask"] == "0.0"
    page = (root / "feedback" / "cy" / A / f"{A}.html").read_text()
    assert "swapped" in page and "BEGIN HIDDEN" not in page and "check(" not in page and "<script" not in page


def test_rerun_skips_unchanged_and_regrades_changed_or_forced(graded_class):
    root, _, _ = graded_class
    before = results(root)
    out = batch(root, "--jobs", "2")
    # The four graded notebooks are skipped; eve's unreadable file is an error, and errors are always retried.
    assert "skipped 4" in out and "errors 1" in out and results(root)["ada"]["graded_at"] == before["ada"]["graded_at"]
    write(submission(A, CLASS["ada"]), root / "submitted" / "ben" / A, A)  # ben resubmits a working answer
    out = batch(root, "--jobs", "2")
    assert "graded 1" in out and "skipped 3" in out and results(root)["ben"]["score"] == EXPECTED["ada"]
    assert "graded 4" in batch(root, "--jobs", "2", "--force", "--assignment", A)


def test_parallel_and_serial_grading_agree(tmp_path):
    root = make_class(tmp_path / "serial", broken=False)
    batch(root, "--jobs", "1", "--seed", "11")
    serial = {s: r["tests"] for s, r in results(root).items()}
    batch(root, "--jobs", "2", "--seed", "11", "--force")
    parallel = {s: r["tests"] for s, r in results(root).items()}
    assert {s: [t["score"] for t in ts] for s, ts in serial.items()} == {s: [t["score"] for t in ts] for s, ts in parallel.items()}


def test_kill_minus_9_loses_nothing_and_the_rerun_resumes(tmp_path):
    root = make_class(tmp_path, broken=False)
    proc = subprocess.Popen([sys.executable, "-m", "autograde", "batch", str(root), "--jobs", "1", "--device", "cpu", "--no-progress"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((root / "autograded").glob("*/*/result.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = results(root)
    assert 1 <= len(done) < len(CLASS)
    for r in done.values():
        assert r["score"] == EXPECTED[r["student"]]  # every file present is complete and correct
    out = batch(root, "--jobs", "2")
    assert f"skipped {len(done)}" in out
    assert {s: r["score"] for s, r in results(root).items()} == EXPECTED
