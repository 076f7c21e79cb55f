"""A hostile class: each attack a student could submit, graded in one batch beside honest students.

One batch (two workers) grades honest students and one hostile notebook per attack class; each test
below checks that its attack gained nothing (no points, no escape, no lasting effect) and that the honest
students graded before, beside and after it keep their full marks. Attacks on the batch itself (a killed
worker) and a missing sandbox have their own runs.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from autograde.checks.bernoulli_masks_practice import ANSWERS
from tests.implementations.bernoulli_masks import ALL
from tests.notebooks import ROOT, submission, write

pytestmark = pytest.mark.slow
A = "02_bernoulli_masks"
IMPL = {(i.target, i.key): i.source for i in ALL}
MASK, DROP = IMPL["bernoulli_mask", "rand_ge"], IMPL["dropout_standard", "rand_mul"]
PRACTICE = {f"answer_{q}": f"answer_{q} = {ANSWERS[q][0][0]!r}" for q in ANSWERS}
GOOD = {"bernoulli_mask": MASK, "dropout_standard": DROP, **PRACTICE}
FULL = 18
MARKER = "HOSTILE_PROCESS_MARKER_7f3a"

# A process that outlives its kernel: once the kernel is gone (its grading over), it signals every process
# it can see, for a minute; without a sandbox that is every kernel graded after it.
DAEMON = f"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c", '''
import os, signal, time  # {MARKER}
kernel = os.getppid()
while os.getppid() == kernel:
    time.sleep(0.05)
for _ in range(600):
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(-1, sig)
        except OSError:
            pass
    time.sleep(0.1)
'''], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""

# Children that sleep, and a bounded fork bomb in a child: the process limit stops it.
FORKS = f"""
import os, subprocess, sys, time
for _ in range(20):
    subprocess.Popen([sys.executable, "-c", "import time  # {MARKER}\\ntime.sleep(600)"])
if os.fork() == 0:
    try:
        for _ in range(5000):
            if os.fork() == 0:
                time.sleep(4)
                os._exit(0)
    finally:
        os._exit(0)
time.sleep(6)
"""


def spy(victim_socket: str, victim: str) -> str:
    """An answer that raises (and so loses its points) if it can see the grader's world."""
    return f"""
import os, socket
LEAKS = []
if os.environ.get("INSTRUCTOR_SECRET"):
    LEAKS.append("environment")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if b"autograde" in open(f"/proc/{{pid}}/cmdline", "rb").read() and b"ipykernel" not in open(f"/proc/{{pid}}/cmdline", "rb").read():
            LEAKS.append("grader command line")
    except OSError:
        pass
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect({victim_socket!r})
    LEAKS.append("unix socket")
except OSError:
    pass
for path in ["{ROOT / 'solutions' / A / (A + '.ipynb')}", "{ROOT / 'README.md'}", "/etc/shadow", {victim!r},
             os.path.expanduser("~/../../kernel.log")]:
    try:
        open(path).read(1)
        LEAKS.append("read " + path)
    except OSError:
        pass
""" + MASK.replace("    if not", "    if LEAKS:\n        raise RuntimeError(str(LEAKS))\n    if not", 1)


def log_link(victim: str) -> str:
    """Links every writable place a kernel log could be to a victim file, then dies once (forcing a restart)."""
    return f"""
import os
for d in {{os.getcwd(), os.path.dirname(os.getcwd()), os.path.expanduser("~"), "/tmp"}}:
    for name in ("kernel.log", "kernel0.log", "log"):
        try:
            os.symlink({victim!r}, os.path.join(d, name))
        except OSError:
            pass
if not os.path.exists("died-once"):
    open("died-once", "w").close()
    os._exit(1)
"""


WIDGETS = """
import comm
for i in range(300):
    comm.create_comm(target_name="jupyter.widget", data={"state": {"_model_module": "x", "_model_name": "y",
                     "blob": "w" * 1_000_000}, "buffer_paths": []})
"""

# A correct mask drawn by a Python loop over the elements (CPU-bound, so as slow relative to PyTorch on a
# busy machine as on an idle one), then every clock the process has is patched.
SLOW_AND_PATCHED = IMPL["bernoulli_mask", "python_loop"] + """
import time
time.perf_counter = lambda: 0.0
time.perf_counter_ns = lambda: 0
time.process_time = lambda: 0.0
"""

# Run after every probe (a cell added at the end): replace records with an archive that inflates to 1 GB, a
# FIFO, a link; forge records for a function never implemented, with calls the plan never made.
RECORDS = """
import glob, json, os, zipfile
import numpy as np
def folder(check):
    return glob.glob(f"../probes/*/{check}")[0]
with zipfile.ZipFile(os.path.join(folder("dropout_standard.contract"), "arrays.npz"), "w", zipfile.ZIP_DEFLATED) as z:
    with z.open("t0.3/out.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (250_000_000,)})
        block = bytes(1 << 24)
        for _ in range(60):
            f.write(block)
raw = os.path.join(folder("dropout_standard.safety"), "raw.json")
os.remove(raw)
os.mkfifo(raw)
os.remove(os.path.join(folder("dropout_standard.speed"), "raw.json"))
os.symlink("/etc/passwd", os.path.join(folder("dropout_standard.speed"), "raw.json"))
for check in ("bernoulli_mask.contract", "bernoulli_mask.randomness"):
    plan = json.load(open(os.path.join(folder(check), "plan.json")))
    calls = {c["id"]: {"status": "ok", "out": {"kind": "tensor", "dtype": "torch.float32", "device": "cpu", "shape": [1000, 1000]}} for c in plan["calls"]}
    calls["never_made"] = {"status": "ok", "out": {"kind": "tensor", "dtype": "torch.float32", "device": "cpu", "shape": [3]}}
    arrays = {f"{cid}/out": (np.random.rand(1000, 1000) > 0.3).astype(np.float32) for cid in calls if cid != "never_made"}
    arrays["never_made/out"] = np.ones(3, np.float32)
    np.savez(os.path.join(folder(check), "arrays.npz"), **arrays)
    json.dump({"calls": calls, "env": {}}, open(os.path.join(folder(check), "raw.json"), "w"))
"""


def _course(root, victim, victim_socket):
    honest = submission(A, GOOD)
    students = {
        "ada": honest,
        "dan": submission(A, GOOD, extra_cells=[(3, DAEMON)]),
        "fox": submission(A, GOOD, extra_cells=[(3, FORKS)]),
        "spy": submission(A, {**GOOD, "bernoulli_mask": spy(victim_socket, victim)}),
        "lou": submission(A, GOOD, extra_cells=[(3, log_link(victim))]),
        "wim": submission(A, GOOD, extra_cells=[(3, WIDGETS)]),
        "tim": submission(A, {**GOOD, "bernoulli_mask": SLOW_AND_PATCHED}),
        "rex": submission(A, {k: v for k, v in GOOD.items() if k != "bernoulli_mask"}, extra_cells=[(10_000, RECORDS)]),
        "zoe": honest,
    }
    for name, nb in students.items():
        folder = root / "submitted" / name / A
        folder.mkdir(parents=True)
        write(nb, folder, A)
    # Entries that are not notebooks: a folder, a FIFO, a link out of the student's folder, a link inside it.
    (root / "submitted" / "dir" / A / f"{A}.ipynb").mkdir(parents=True)
    (root / "submitted" / "fifo" / A).mkdir(parents=True)
    os.mkfifo(root / "submitted" / "fifo" / A / f"{A}.ipynb")
    (root / "submitted" / "sym" / A).mkdir(parents=True)
    os.symlink(root / "submitted" / "ada" / A / f"{A}.ipynb", root / "submitted" / "sym" / A / f"{A}.ipynb")
    inside = root / "submitted" / "sin" / A
    inside.mkdir(parents=True)
    write(honest, inside, ".real")  # a hidden name: only the link to it is discovered
    os.symlink(inside / ".real.ipynb", inside / f"{A}.ipynb")
    return root


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    victim = root / "victim-result.json"
    victim.write_text('{"score": 18}')
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "instructor.sock"))
    server.listen()
    _course(root, str(victim), str(root / "instructor.sock"))
    baseline = len(psutil.pids())
    peak = [baseline]
    done = threading.Event()

    def count():
        while not done.wait(0.5):
            peak[0] = max(peak[0], len(psutil.pids()))

    watcher = threading.Thread(target=count, daemon=True)
    watcher.start()
    env = dict(os.environ, INSTRUCTOR_SECRET="do-not-leak")
    t0 = time.monotonic()
    # Run from inside the course folder, as an instructor would: that folder (on sys.path under `python -m`)
    # holds every submission and must stay out of the sandbox.
    proc = subprocess.run([sys.executable, "-m", "autograde", "batch", ".", "--jobs", "2", "--device", "cpu",
                           "--no-progress", "--cell-timeout", "60"], capture_output=True, text=True, timeout=1500, cwd=root, env=env)
    done.set()
    server.close()
    assert proc.returncode == 0, proc.stderr
    results = {p.parent.parent.name: json.loads(p.read_text()) for p in (root / "autograded").glob("*/*/result.json")}
    leftovers = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if MARKER in " ".join(p.info["cmdline"] or [])]
    return {"root": root, "out": proc.stdout, "results": results, "victim": victim, "leftovers": leftovers,
            "peak": peak[0] - baseline, "seconds": time.monotonic() - t0}


def scores(result):
    return {t["grade_id"]: t["score"] for t in result["tests"]}


def test_honest_students_beside_every_attack_get_full_marks(hostile_batch):
    for student in ("ada", "zoe", "sin"):
        assert hostile_batch["results"][student]["score"] == FULL, hostile_batch["results"][student]
        assert hostile_batch["results"][student]["protections"]["namespaces"]


def test_a_leftover_daemon_dies_with_its_sandbox(hostile_batch):
    assert hostile_batch["results"]["dan"]["score"] == FULL  # its own code works; the daemon gains nothing
    assert not hostile_batch["leftovers"], hostile_batch["leftovers"]


def test_forked_children_and_a_fork_bomb_are_contained_and_reaped(hostile_batch):
    assert "error" not in hostile_batch["results"]["fox"]
    assert hostile_batch["peak"] < 2 * 256 + 200, f"{hostile_batch['peak']} more processes at the peak"
    assert not hostile_batch["leftovers"]


def test_the_kernel_sees_no_environment_process_socket_or_file_of_the_grader(hostile_batch):
    s = scores(hostile_batch["results"]["spy"])
    assert s["test_bernoulli_mask"] == 3, hostile_batch["results"]["spy"]["tests"][0]["feedback"]


def test_a_symlinked_log_and_a_restart_write_nothing_outside_the_box(hostile_batch):
    assert hostile_batch["victim"].read_text() == '{"score": 18}'
    lou = hostile_batch["results"]["lou"]
    assert lou["score"] == FULL or any("restarted" in n for n in lou["notes"]), lou["notes"]


def test_a_widget_flood_is_capped(hostile_batch):
    wim = hostile_batch["results"]["wim"]
    assert wim["score"] == FULL
    assert any("dropped" in n for n in wim["notes"]), wim["notes"]


def test_patched_clocks_do_not_buy_speed_points(hostile_batch):
    s = scores(hostile_batch["results"]["tim"])
    assert s["test_bernoulli_mask"] == 3  # a correct mask (it ignores the generator, so randomness fails too)
    assert s["test_bernoulli_mask_speed"] == 0
    speed = next(t for t in hostile_batch["results"]["tim"]["tests"] if t["grade_id"] == "test_bernoulli_mask_speed")
    assert "took" in speed["feedback"]  # judged on the grader's timings, not a missing record


def test_forged_inflating_fifo_and_linked_records_are_worthless(hostile_batch):
    rex = hostile_batch["results"]["rex"]
    s = scores(rex)
    # bernoulli_mask was never written: its forged records earn nothing.
    assert s["test_bernoulli_mask"] == s["test_bernoulli_mask_randomness"] == s["test_bernoulli_mask_speed"] == 0
    # dropout_standard is correct, but the records it then replaced are refused, costing only those checks.
    assert s["test_dropout_standard"] == s["test_dropout_standard_safety"] == s["test_dropout_standard_speed"] == 0
    assert all(s[f"test_answer_q{n}"] == 1 for n in range(1, 6))
    feedback = "\n".join(t["feedback"] for t in rex["tests"])
    assert "refused" in feedback and "regular file" in feedback


def test_entries_that_are_not_notebook_files_are_reported_not_graded(hostile_batch):
    res = hostile_batch["results"]
    assert "folder" in res["dir"]["error"] and "FIFO" in res["fifo"]["error"]
    assert "leaves the student's own folder" in res["sym"]["error"]
    assert res["sin"]["score"] == FULL  # a link inside the student's own folder is followed


def test_a_killed_worker_costs_only_its_submission_and_is_regraded(tmp_path):
    stall = "import pathlib, time\npathlib.Path('KILL_ME').touch()\ntime.sleep(15)\n"
    for name, nb in {"ada": submission(A, GOOD), "kil": submission(A, GOOD, extra_cells=[(3, stall)]),
                     "zoe": submission(A, GOOD)}.items():
        (tmp_path / "submitted" / name / A).mkdir(parents=True)
        write(nb, tmp_path / "submitted" / name / A, A)
    cmd = [sys.executable, "-m", "autograde", "batch", str(tmp_path), "--jobs", "2", "--device", "cpu", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    deadline = time.monotonic() + 600
    while not killed and time.monotonic() < deadline and proc.poll() is None:
        for p in psutil.Process(proc.pid).children(recursive=True):
            try:
                if p.name() == "bwrap" and any(os.path.exists(os.path.join(a, "work", "KILL_ME")) for a in p.cmdline() if a.endswith("/box")):
                    worker = next(q for q in p.parents() if q.ppid() == proc.pid)
                    os.kill(worker.pid, signal.SIGKILL)
                    killed = True
                    break
            except (psutil.Error, StopIteration):
                continue
        time.sleep(0.2)
    out, err = proc.communicate(timeout=900)
    assert killed and proc.returncode == 0, err
    res = {p.parent.parent.name: json.loads(p.read_text()) for p in (tmp_path / "autograded").glob("*/*/result.json")}
    assert "worker" in res["kil"]["error"] and "died" in res["kil"]["error"]
    assert res["ada"]["score"] == res["zoe"]["score"] == FULL
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert "graded 1" in again.stdout and "skipped 2" in again.stdout, again.stdout  # the error is regraded
    assert json.loads((tmp_path / "autograded" / "kil" / A / "result.json").read_text())["score"] == FULL


def test_a_missing_sandbox_refuses_loudly_unless_the_instructor_opts_out(tmp_path):
    path = write(submission(A, GOOD), tmp_path, A)
    env = dict(os.environ, PATH="/nonexistent")  # no bwrap on PATH
    cmd = [sys.executable, "-m", "autograde", "grade", str(path), "--device", "cpu"]
    refused = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert refused.returncode == 2 and "bubblewrap" in refused.stderr and "--no-sandbox" in refused.stderr
    assert refused.stdout == ""
    unsafe = subprocess.run([*cmd, "--no-sandbox"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert unsafe.returncode == 0, unsafe.stderr
    assert "WITHOUT a sandbox" in unsafe.stdout and f"Score: {FULL}" in unsafe.stdout
