"""autograde: grading for the Dropout course book's nbgrader assignments.

- ``autograde.checks``: per-chapter checks, each a plan (inputs) and a verdict (properties).
- ``autograde.probe``: the only code that calls student functions; records raw outputs.
- ``autograde.notebook`` and ``autograde.grade``: assemble, execute and judge one submission.
- ``autograde.release``: generate the student release in ``exercises/`` with nbgrader.
- ``python -m autograde``: the command line (``autograde.cli``).
"""

from .checks import check

__all__ = ["check"]
__version__ = "0.1.0"
