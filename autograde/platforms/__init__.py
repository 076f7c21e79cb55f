"""Grading on the platforms built for big classes: Gradescope's autograder and PrairieLearn's external grader.

``python -m autograde export gradescope|prairielearn ASSIGNMENT --out DIR`` (``autograde/export.py``)
packages the grader, the instructor's source notebook and an entrypoint; on the platform the entrypoint
runs this subpackage:

- ``common``: what both platforms share: find the one notebook in the submission, refuse what cannot be
  graded with one paragraph, read the container's memory and CPUs, derive the limits, and grade with
  ``autograde.grade.grade_notebook`` (the very pipeline ``autograde grade`` runs; nothing is re-implemented),
  in bubblewrap where the container allows it and saying so where it does not, as an unprivileged user
  when the platform starts the entrypoint as root.
- ``gradescope`` and ``prairielearn``: the report translated into each platform's ``results.json``, a
  schema check of that file against the platform's documented fields, and the entrypoint's ``main``.
"""
