"""Grader benchmark: latency against nbgrader, batch throughput, peak memory.

    .venv/bin/python benchmarks/grading.py [--submissions 40] [--repeats 3] [--out benchmarks/results.json]

1. Latency: ``autograde grade`` and ``nbgrader autograde`` on the same submission, alternated
   ``--repeats`` times in one run; the median of each and their ratio.
2. Throughput: ``autograde batch`` over ``--submissions`` copies of a class (solution, release and buggy
   notebooks, round robin) with ``--jobs 1`` and ``--jobs 2`` (``--force``), in one run; the speed-up.
3. Peak memory: the largest resident set of the batch (grader) process, and of any kernel it ran.

Not a test: timings depend on the machine. The README quotes a run on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
A = "02_bernoulli_masks"


def run(cmd, cwd, env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def nbgrader_course(tmp: Path, notebook: Path) -> Path:
    """A minimal nbgrader course with one submission, its gradebook prepared by generate_assignment."""
    course = tmp / "nbgrader_course"
    shutil.copytree(ROOT / "solutions" / A, course / "source" / A)
    (course / "submitted" / "student" / A).mkdir(parents=True)
    shutil.copy(notebook, course / "submitted" / "student" / A / f"{A}.ipynb")
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'bench'\n")
    subprocess.run([bin_("nbgrader"), "generate_assignment", A, "--force"], cwd=course, check=True, capture_output=True, env=env())
    return course


def bin_(name):
    return str(Path(sys.executable).parent / name)


def env():
    return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])


def make_class(root: Path, n: int) -> None:
    from tests.implementations.bernoulli_masks import ALL
    from tests.notebooks import submission, write

    impl = {(i.target, i.key): i.source for i in ALL}
    kinds = [
        {"bernoulli_mask": impl["bernoulli_mask", "rand_ge"], "dropout_standard": impl["dropout_standard", "rand_mul"]},
        {},
        {"bernoulli_mask": impl["bernoulli_mask", "swapped"], "dropout_standard": impl["dropout_standard", "inverted"]},
        {"bernoulli_mask": impl["bernoulli_mask", "numpy"].replace("def ", "import numpy as np\ndef ", 1),
         "dropout_standard": impl["dropout_standard", "where"]},
    ]
    for i in range(n):
        folder = root / "submitted" / f"s{i:03d}" / A
        folder.mkdir(parents=True)
        write(submission(A, kinds[i % len(kinds)]), folder, A)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--submissions", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    args = ap.parse_args()
    out: dict = {"cpus": os.cpu_count(), "submissions": args.submissions}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        sol = ROOT / "solutions" / A / f"{A}.ipynb"
        course = nbgrader_course(tmp, sol)
        ours, theirs = [], []
        for _ in range(args.repeats):  # alternate so drifting machine load hits both alike
            ours.append(run([sys.executable, "-m", "autograde", "grade", str(sol), "--json", "--device", "cpu"], ROOT))
            theirs.append(run([bin_("nbgrader"), "autograde", A, "--force"], course, env()))
        out["latency_autograde_s"] = statistics.median(ours)
        out["latency_nbgrader_s"] = statistics.median(theirs)
        out["latency_ratio"] = out["latency_autograde_s"] / out["latency_nbgrader_s"]
        print(f"latency: autograde {out['latency_autograde_s']:.1f} s, nbgrader autograde {out['latency_nbgrader_s']:.1f} s, "
              f"ratio {out['latency_ratio']:.2f}", flush=True)

        klass = tmp / "class"
        make_class(klass, args.submissions)
        for jobs in (1, 2):
            seconds = run([sys.executable, "-m", "autograde", "batch", str(klass), "--jobs", str(jobs), "--device", "cpu",
                           "--force", "--no-progress"], ROOT)
            out[f"batch_jobs{jobs}_s"] = seconds
            out[f"throughput_jobs{jobs}_per_min"] = 60 * args.submissions / seconds
            print(f"batch --jobs {jobs}: {seconds:.0f} s for {args.submissions} ({out[f'throughput_jobs{jobs}_per_min']:.1f}/min)", flush=True)
        out["speedup_jobs2"] = out["batch_jobs1_s"] / out["batch_jobs2_s"]
        # ru_maxrss of waited-for descendants: the largest single process among graders and kernels (KiB)
        out["peak_rss_any_process_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"speed-up with 2 workers: {out['speedup_jobs2']:.2f}x; peak resident memory of any grader or kernel "
              f"process: {out['peak_rss_any_process_mb']:.0f} MB")
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
