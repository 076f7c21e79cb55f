"""Command line: ``python -m autograde grade|release|checks``.

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
    print(f"Score: {report['score']:g} / {report['max_score']:g}")


def cmd_grade(args) -> int:
    from .grade import grade_notebook

    report = grade_notebook(
        Path(args.notebook), args.assignment, args.device, seed=args.seed, cell_timeout=args.cell_timeout
    )
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_report(report)
    return 0


def cmd_release(args) -> int:
    from .grade import COURSE_ROOT
    from .release import drift, generate

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


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m autograde", description="Grade the Dropout course's assignments.")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one submitted notebook")
    g.add_argument("notebook", help="the student's .ipynb")
    g.add_argument("--assignment", help="assignment id, e.g. 02_bernoulli_masks (default: from the file name or its cells)")
    g.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when available; default)")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    g.add_argument("--seed", type=int, help="grader seed (default: drawn fresh and recorded in the result)")
    g.add_argument("--cell-timeout", type=int, default=120, help="seconds each cell may run (default 120)")
    g.set_defaults(func=cmd_grade)
    r = sub.add_parser("release", help="generate exercises/ from solutions/ with nbgrader")
    r.add_argument("--check", action="store_true", help="only report whether exercises/ is in sync")
    r.add_argument("--assignment", help="release only this assignment id")
    r.set_defaults(func=cmd_release)
    c = sub.add_parser("checks", help="list the checks test cells can call")
    c.set_defaults(func=cmd_checks)
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
