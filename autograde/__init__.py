"""autograde: grading for the Dropout course book's nbgrader assignments.

- ``autograde.checks``: per-chapter checks, each a plan (inputs) and a verdict (properties).
- ``autograde.probe``: the only code that calls student functions; records raw outputs.
- ``autograde.notebook`` and ``autograde.grade``: assemble, execute and judge one submission.
- ``autograde.release``: generate the student release in ``exercises/`` with nbgrader.
- ``python -m autograde``: the command line (``autograde.cli``).
"""

import sys

# jsonschema (which nbformat imports) loads rfc3987_syntax, when installed, for its optional "iri" format
# check, and that module compiles a Lark grammar at import: about 3 s of every process that reads a notebook
# on a 2-core machine, for a format no notebook schema uses. Marking it absent makes jsonschema skip it.
# Here, so that it holds for every entry point (command line, batch workers, platform runners, tests)
# whichever of them imports nbformat first; in a student's kernel it only hides that one optional module.
sys.modules.setdefault("rfc3987_syntax", None)

__all__ = ["check"]
__version__ = "0.1.0"


def check(name, fn, device=None, seed=None):
    """Run check ``name`` on ``fn`` here and report (see ``autograde.checks.check``).

    Imported on first use, so that a kernel which only imports ``autograde`` (the assignments' setup
    cell) or runs the grader's probes never loads the verdicts and SciPy.
    """
    from .checks import check as run

    return run(name, fn, device=device, seed=seed)
