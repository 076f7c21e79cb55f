"""Grader benchmark: latency per assignment against nbclient and nbgrader, the sandbox's cost, a class.

    .venv/bin/python benchmarks/grading.py [--repeats 3] [--submissions 40] [--only 02_bernoulli_masks]
                                          [--out benchmarks/results.json]

1. One submission, every assignment: on its solution notebook, alternated ``--repeats`` times in one run
   (so drifting load hits every arm alike), the wall time of
   - the floor: ``jupyter execute`` (nbclient's own command: a kernel start and every cell, the checks
     included, run inside the student's kernel as a student would run them);
   - ``autograde grade`` (sandboxed, the default) and ``autograde grade --no-sandbox``;
   - ``nbgrader autograde`` (its course folder and gradebook prepared beforehand, not timed).
   Medians, and the ratios autograde/floor, autograde/nbgrader and sandboxed/unsandboxed.
2. Where autograde's time goes: the median of each part its JSON report measures (process start and
   imports, plan building (beside the kernel start), sandbox and kernel start, student cells, probe cells,
   timing cells, reading records, verdicts).
3. A class: ``autograde batch`` over ``--submissions`` notebooks of assignment 02 (solution, release and
   buggy ones, round robin) with ``--jobs 1`` and ``--jobs 2`` (``--force``), and ``--jobs 1`` pinned to
   one core with ``taskset``; the speed-ups, the cores each kept busy, and the cost per submission at one
   worker against one ``autograde grade`` call measured above.

Not a test: timings depend on the machine. The README quotes a run on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
CLASS_ASSIGNMENT = "02_bernoulli_masks"


def bin_(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def env() -> dict:
    return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])


def timed(cmd, cwd) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def nbgrader_course(tmp: Path, aid: str) -> Path:
    """A minimal nbgrader course with the solution as one student's submission; gradebook prepared."""
    course = tmp / f"nbgrader-{aid}"
    shutil.copytree(ROOT / "solutions" / aid, course / "source" / aid)
    (course / "submitted" / "student" / aid).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / aid / f"{aid}.ipynb", course / "submitted" / "student" / aid / f"{aid}.ipynb")
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'bench'\n")
    subprocess.run([bin_("nbgrader"), "generate_assignment", aid, "--force"], cwd=course, check=True, capture_output=True, env=env())
    return course


def latency(aid: str, repeats: int, tmp: Path) -> dict:
    sol = ROOT / "solutions" / aid / f"{aid}.ipynb"
    course = nbgrader_course(tmp, aid)
    floor_copy = tmp / f"floor-{aid}.ipynb"  # jupyter execute runs in the notebook's folder; a copy keeps solutions/ clean
    shutil.copy(sol, floor_copy)
    grade = [sys.executable, "-m", "autograde", "grade", str(sol), "--json", "--device", "cpu"]
    arms = {
        "floor (jupyter execute)": ([bin_("jupyter-execute"), str(floor_copy)], tmp),
        "autograde grade": (grade, ROOT),
        "autograde grade --no-sandbox": ([*grade, "--no-sandbox"], ROOT),
        "nbgrader autograde": ([bin_("nbgrader"), "autograde", aid, "--force"], course),
    }
    seconds: dict[str, list[float]] = {k: [] for k in arms}
    parts: dict[str, list[float]] = {}
    for r in range(repeats):
        order = list(arms) if r % 2 == 0 else list(reversed(arms))  # alternate, so drift hits every arm alike
        for name in order:
            cmd, cwd = arms[name]
            s, out = timed(cmd, cwd)
            seconds[name].append(s)
            if name == "autograde grade":
                rep = json.loads(out)
                assert rep["score"] == rep["max_score"], f"{aid}: the solution lost points"
                for k, v in rep["timings"].items():
                    parts.setdefault(k, []).append(v)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    return {
        "median_s": med,
        "all_s": seconds,
        "ratio_to_floor": med["autograde grade"] / med["floor (jupyter execute)"],
        "ratio_to_nbgrader": med["autograde grade"] / med["nbgrader autograde"],
        "sandbox_cost_ratio": med["autograde grade"] / med["autograde grade --no-sandbox"],
        "breakdown_median_s": {k: statistics.median(v) for k, v in parts.items()},
    }


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
        folder = root / "submitted" / f"s{i:03d}" / CLASS_ASSIGNMENT
        folder.mkdir(parents=True)
        write(submission(CLASS_ASSIGNMENT, kinds[i % len(kinds)]), folder, CLASS_ASSIGNMENT)


def busy_core_seconds() -> float:
    """CPU time every core of the machine has spent busy since boot (/proc/stat), in core-seconds."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def batch(n: int, tmp: Path) -> dict:
    """The class with --jobs 1 and --jobs 2 on the whole machine and, where taskset can pin it, --jobs 1 on
    one core (what one worker does without a second core to start kernels ahead on), each with the cores
    it kept busy on average (machine-wide, so run it on an otherwise idle machine)."""
    klass = tmp / "class"
    make_class(klass, n)
    arms = {"jobs1": ([], 1), "jobs2": ([], 2)}
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        arms = {"jobs1_one_core": (["taskset", "-c", str(min(os.sched_getaffinity(0)))], 1), **arms}
    out = {}
    for arm, (prefix, jobs) in arms.items():
        busy = busy_core_seconds()
        s, _ = timed([*prefix, sys.executable, "-m", "autograde", "batch", str(klass), "--jobs", str(jobs), "--device", "cpu",
                      "--force", "--no-progress"], ROOT)
        out[f"{arm}_s"] = s
        out[f"{arm}_cores_busy"] = (busy_core_seconds() - busy) / s
    out["speedup_jobs2"] = out["jobs1_s"] / out["jobs2_s"]
    out["per_submission_jobs1_s"] = out["jobs1_s"] / n
    if "jobs1_one_core_s" in out:
        out["speedup_jobs2_on_two_cores_over_jobs1_on_one"] = out["jobs1_one_core_s"] / out["jobs2_s"]
    return out


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"), "load_before": os.getloadavg()[0]}


def summary(res: dict) -> str:
    """The README's tables (Markdown) from a results file."""
    m = res["machine"]
    lines = [f"Measured on {m['cpu']} ({m['cores']} cores), torch {m['torch']}, {m['date']}, load average "
             f"{m['load_before']:.2f} at the start; medians of {res['repeats']} runs alternated in one run.", "",
             "| assignment | floor (`jupyter execute`) | `autograde grade` | `--no-sandbox` | `nbgrader autograde` "
             "| grade / floor | grade / nbgrader | sandbox cost |", "|---|---|---|---|---|---|---|---|"]
    for aid, r in res["assignments"].items():
        t = r["median_s"]
        lines.append(f"| {aid} | {t['floor (jupyter execute)']:.1f} s | {t['autograde grade']:.1f} s | "
                     f"{t['autograde grade --no-sandbox']:.1f} s | {t['nbgrader autograde']:.1f} s | "
                     f"{r['ratio_to_floor']:.2f} | {r['ratio_to_nbgrader']:.2f} | {r['sandbox_cost_ratio']:.2f} |")
    found = dict.fromkeys(k for r in res["assignments"].values() for k in r["breakdown_median_s"])
    order = ["process start and imports", "plan building", "imports for references", "sandbox and kernel start",
             "student cells", "probe cells", "timing cells", "reading records", "verdicts", "grade_notebook in all"]
    rank = lambda k: next((i for i, o in enumerate(order) if k.startswith(o)), len(order))  # noqa: E731
    parts = sorted(found, key=rank)  # every part any assignment has, in the pipeline's order
    lines += ["", "Where `autograde grade`'s time goes (medians, seconds; the parts marked *beside* overlap others):", "",
              "| assignment | " + " | ".join(parts) + " |", "|---|" + "---|" * len(parts)]
    for aid, r in res["assignments"].items():
        lines.append(f"| {aid} | " + " | ".join(f"{r['breakdown_median_s'][k]:.2f}" if k in r["breakdown_median_s"] else "-" for k in parts) + " |")
    if "batch" in res:
        b = res["batch"]
        when = f", measured {b['date']}" if b.get("date", m["date"]) != m["date"] else ""
        per = (f", {b['per_submission_to_one_grade']:.2f} x one `autograde grade` call on the solution"
               + (f" timed in the same run, {b['one_grade_s']:.1f} s" if "one_grade_s" in b else "")
               if "per_submission_to_one_grade" in b else "")
        busy = (f"; cores kept busy on average: {b['jobs1_cores_busy']:.2f} at `--jobs 1`, "
                f"{b['jobs2_cores_busy']:.2f} at `--jobs 2`" if "jobs1_cores_busy" in b else "")
        lines += ["", f"A class{when}: `autograde batch` over {b['submissions']} submissions of {CLASS_ASSIGNMENT} "
                  f"(solution, release and buggy notebooks in turn): `--jobs 1` {b['jobs1_s']:.0f} s "
                  f"({b['per_submission_jobs1_s']:.1f} s per submission{per}), `--jobs 2` {b['jobs2_s']:.0f} s: "
                  f"{b['speedup_jobs2']:.2f} x faster{busy}."]
        if "jobs1_one_core_s" in b:
            lines += ["", f"Pinned to one core (`taskset -c 0`), `--jobs 1` takes {b['jobs1_one_core_s']:.0f} s "
                      f"({b['jobs1_one_core_cores_busy']:.2f} cores busy): `--jobs 2` on two cores is "
                      f"{b['speedup_jobs2_on_two_cores_over_jobs1_on_one']:.2f} x faster than one worker on one core."]
    lines += ["", f"Peak resident memory of any grader or kernel process: {res['peak_rss_any_process_mb']:.0f} MB."]
    return "\n".join(lines)


def main() -> None:
    from autograde.grade import assignments

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--submissions", type=int, default=40)
    ap.add_argument("--only", action="append", help="assignment(s) to time (default: all)")
    ap.add_argument("--no-batch", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--summary", action="store_true", help="print the README's tables from --out and exit")
    args = ap.parse_args()
    if args.summary:
        print(summary(json.loads(Path(args.out).read_text())))
        return
    out: dict = {"machine": machine(), "repeats": args.repeats, "assignments": {}}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for aid in args.only or list(assignments()):
            res = latency(aid, args.repeats, tmp)
            out["assignments"][aid] = res
            m = res["median_s"]
            print(f"{aid}: floor {m['floor (jupyter execute)']:.1f} s, autograde {m['autograde grade']:.1f} s "
                  f"(x{res['ratio_to_floor']:.2f} the floor, x{res['ratio_to_nbgrader']:.2f} nbgrader's "
                  f"{m['nbgrader autograde']:.1f} s; the sandbox costs x{res['sandbox_cost_ratio']:.2f})", flush=True)
        if not args.no_batch:
            b = batch(args.submissions, tmp)
            one = out["assignments"].get(CLASS_ASSIGNMENT, {}).get("median_s", {}).get("autograde grade")
            if one:
                b["one_grade_s"] = one
                b["per_submission_to_one_grade"] = b["per_submission_jobs1_s"] / one
            out["batch"] = {"submissions": args.submissions, "date": time.strftime("%Y-%m-%d"), **b}
            print(f"batch of {args.submissions}: --jobs 1 {b['jobs1_s']:.0f} s ({b['per_submission_jobs1_s']:.1f} s each"
                  + (f", x{b['per_submission_to_one_grade']:.2f} one grade call" if one else "")
                  + f"), --jobs 2 {b['jobs2_s']:.0f} s: x{b['speedup_jobs2']:.2f}"
                  + (f"; --jobs 1 on one core {b['jobs1_one_core_s']:.0f} s: --jobs 2 on two cores "
                     f"x{b['speedup_jobs2_on_two_cores_over_jobs1_on_one']:.2f}" if "jobs1_one_core_s" in b else ""), flush=True)
        out["peak_rss_any_process_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
