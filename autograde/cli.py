"""Command line: ``python -m autograde grade|batch|release|checks|export|import``.

Errors a person can fix are printed as one paragraph on stderr with exit status 2; an internal error
says so in one paragraph too (set AUTOGRADE_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

def _print_report(report: dict) -> None:
    print(f"{report['notebook']}  ({report['assignment']}, device {report['device']}, seed {report['seed']})")
    for t in report["tests"]:
        mark = "✓" if t["score"] == t["max_score"] else "✗"
        print(f"  {mark} {t['grade_id']:<34} {t['score']:g} / {t['max_score']:g}")
        for line in t["feedback"].splitlines():
            if not line.startswith("✓"):
                print(textwrap.indent(textwrap.fill(line, 100, subsequent_indent="    "), "      "))
    for note in report["notes"]:
        print(f"  note: {note}")
    from .sandbox import Protections

    print(f"  {Protections(**report['protections']).summary()}")
    print(f"Score: {report['score']:g} / {report['max_score']:g}")


def _limits(args):
    from .grade import Limits

    return Limits(
        cell_timeout=args.cell_timeout, total_timeout=args.total_timeout, memory_mb=args.memory_mb,
        output_kb=args.output_kb, disk_mb=args.disk_mb, processes=args.processes, sandbox=not args.no_sandbox,
        restarts=args.restarts,
    )


def cmd_grade(args) -> int:
    import time

    import psutil
    import nbclient  # noqa: F401  (imported by the grading itself; counted here with the rest of the imports)

    from .grade import grade_notebook

    # Python's start and the grader's imports, up to here (for the benchmark's breakdown).
    imports = max(0.0, time.time() - psutil.Process().create_time())
    report = grade_notebook(Path(args.notebook), args.assignment, args.device, seed=args.seed, limits=_limits(args))
    report["timings"] = {"process start and imports": round(imports, 3), **report["timings"]}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_report(report)
    return 0


def cmd_batch(args) -> int:
    from . import batch

    summary = batch.run(
        Path(args.path), args.assignment, jobs=args.jobs, device=args.device,
        results=Path(args.results) if args.results else None, db_url=args.db, force=args.force,
        seed=args.seed, limits=_limits(args), progress=not args.no_progress,
    )
    print(summary.table())
    if args.csv:
        results = Path(args.results) if args.results else batch.discover(Path(args.path), args.assignment)[1] / "autograded"
        n = batch.export_csv(results, Path(args.csv))
        print(f"wrote {n} results to {args.csv}")
    return 0


def cmd_release(args) -> int:
    from .grade import COURSE_ROOT, GradingError
    from .release import drift, generate, student_repo

    if args.student_repo:
        try:
            out = student_repo(Path(args.student_repo))
        except FileExistsError as exc:
            raise GradingError(f"{exc}.") from None
        print(f"wrote the student repository to {out}: the book, exercises/, autograde and the environment files; "
              "no solutions, hidden tests or test implementations")
        return 0
    if args.check:
        problems = drift()
        for p in problems:
            print(p)
        print("exercises/ is in sync with solutions/" if not problems else "run 'make release' to regenerate exercises/")
        return 1 if problems else 0
    out = generate(COURSE_ROOT / "exercises", only=args.assignment)
    print(f"released {args.assignment or 'every assignment of solutions/'} into {out}")
    return 0


def cmd_checks(args) -> int:
    from .checks import registry

    for name, c in sorted(registry().items()):
        print(f"{name:<32} {c.summary}")
    return 0


def _at_least(lowest: int):
    """An argparse type: a whole number >= ``lowest``, refused with the option's name otherwise (a negative
    --jobs made the worker pool wait forever; a limit of 0 or less has no meaning)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"{value} is too small: give a whole number of at least {lowest}")
        return value

    return parse


def _common(p, json_flag: bool = True) -> None:
    from .grade import Limits

    d = Limits()
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when available; default)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    p.add_argument("--seed", type=int, help="grader seed (default: drawn fresh and recorded in the result)")
    p.add_argument("--cell-timeout", type=_at_least(1), default=d.cell_timeout, help=f"seconds each cell may run (default {d.cell_timeout})")
    p.add_argument("--total-timeout", type=_at_least(1), default=d.total_timeout, help=f"seconds a whole notebook may run (default {d.total_timeout})")
    p.add_argument("--memory-mb", type=_at_least(1), default=d.memory_mb, help=f"memory a submission's kernel may use (default {d.memory_mb})")
    p.add_argument("--output-kb", type=_at_least(1), default=d.output_kb, help=f"output kept per submission, every message kind (default {d.output_kb})")
    p.add_argument("--disk-mb", type=_at_least(1), default=d.disk_mb, help=f"files a submission may write (default {d.disk_mb})")
    p.add_argument("--processes", type=_at_least(1), default=d.processes, help=f"processes and threads in a sandbox (default {d.processes})")
    p.add_argument("--restarts", type=_at_least(0), default=d.restarts,
                   help=f"times a dead kernel is restarted, rerunning the notebook without the cell that killed it (default {d.restarts})")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code with NO isolation (only for code you trust); results say so")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m autograde", description="Grade the Dropout course's assignments.")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one submitted notebook")
    g.add_argument("notebook", help="the student's .ipynb")
    g.add_argument("--assignment", help="assignment id, e.g. 02_bernoulli_masks (default: from the file name or its cells)")
    _common(g)
    g.set_defaults(func=cmd_grade)
    b = sub.add_parser("batch", help="grade a class: an nbgrader submitted/ folder or a folder of notebooks")
    b.add_argument("path", help="submitted/<student>/<assignment>/*.ipynb, the course root holding it, or a folder of .ipynb")
    b.add_argument("--assignment", help="grade only this assignment (and use it for a flat folder)")
    b.add_argument("--jobs", type=_at_least(1), default=None, help="worker processes (default: the cores this process may use: its CPU affinity and its container's CPU quota)")
    b.add_argument("--db", help="nbgrader gradebook URL to store grades in, e.g. sqlite:///gradebook.db")
    b.add_argument("--results", help="folder for result.json files (default: <course>/autograded)")
    b.add_argument("--csv", help="also write every stored result to this CSV file")
    b.add_argument("--force", action="store_true", help="regrade submissions that are unchanged since their last grade")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(b, json_flag=False)
    b.set_defaults(func=cmd_batch)
    r = sub.add_parser("release", help="generate exercises/ from solutions/ with nbgrader")
    r.add_argument("--check", action="store_true", help="only report whether exercises/ is in sync")
    r.add_argument("--assignment", help="release only this assignment id")
    r.add_argument("--student-repo", metavar="DIR", help="write what students may see (no solutions/) to the new folder DIR")
    r.set_defaults(func=cmd_release)
    c = sub.add_parser("checks", help="list the checks test cells can call")
    c.set_defaults(func=cmd_checks)
    from .export import add_parsers  # export (Gradescope, PrairieLearn) and import (their grades into the gradebook)

    add_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .grade import GradingError

    try:
        return args.func(args)
    except GradingError as exc:
        print(f"autograde: {exc}", file=sys.stderr)  # one paragraph, unwrapped: paths stay whole
        return 2
    except KeyboardInterrupt:
        print("autograde: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("AUTOGRADE_DEBUG"):
            raise
        print(
            f"autograde: internal error ({type(exc).__name__}: {exc}). This is a bug in the grader, not in "
            "the submission; rerun with AUTOGRADE_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return 3
