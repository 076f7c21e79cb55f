"""autograde: grading for the Dropout course book's nbgrader assignments.

- ``autograde.checks``: per-chapter checks, each a plan (inputs) and a verdict (properties).
- ``autograde.probe``: the only code that calls student functions; records raw outputs.
- ``autograde.notebook`` and ``autograde.grade``: assemble, execute and judge one submission.
- ``autograde.release``: generate the student release in ``exercises/`` with nbgrader.
- ``python -m autograde``: the command line (``autograde.cli``).
"""

__all__ = ["check"]
__version__ = "0.1.0"


def check(name, fn, device=None, seed=None):
    """Run check ``name`` on ``fn`` here and report (see ``autograde.checks.check``).

    Imported on first use, so that a kernel which only imports ``autograde`` (the assignments' setup
    cell) or runs the grader's probes never loads the verdicts and SciPy.
    """
    from .checks import check as run

    return run(name, fn, device=device, seed=seed)
