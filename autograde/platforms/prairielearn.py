"""PrairieLearn's external grader: ``/grade/tests/run.sh`` calls ``main``, which writes ``/grade/results/results.json``.

The format follows PrairieLearn's "External Grading" documentation (docs.prairielearn.com/externalGrading/,
``docs/externalGrading.md`` in its repository as of 2026): ``gradable``, ``score`` (a fraction in 0..1), ``message``, ``output``,
``format_errors`` (when not gradable) and ``tests``, each with ``name``, ``description``, ``points``,
``max_points``, ``message`` and ``output``; the file must stay under 1 MB. Further top-level keys are
allowed ("you may add any additional data"): ``autograde`` carries the seed, the grade_ids with their
points and the protections, which ``autograde import prairielearn`` reads back from PrairieLearn's
submissions CSV (its ``Feedback`` column holds this file).

A submission that cannot be graded, or a container that cannot grade it fairly, gets ``gradable: false``
with the reason in ``format_errors`` and ``message``: PrairieLearn then awards and takes no points and the
student keeps the attempt. PrairieLearn shows every test to the student (it has no hidden tests); the
tests carry names, check summaries and the verdicts' messages, never the hidden tests' code.
"""

from __future__ import annotations

import json
import sys

from . import common

DEFAULT_ROOT = "/grade"
TEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "points", "max_points"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "points": {"type": "number", "minimum": 0},
        "max_points": {"type": "number", "minimum": 0},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "images": {"type": "array"},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["gradable", "message"],
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "format_errors": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "images": {"type": "array"},
        "tests": {"type": "array", "items": TEST},
    },
    "allOf": [
        {"if": {"properties": {"gradable": {"const": True}}},
         "then": {"required": ["score", "tests"]},
         "else": {"required": ["format_errors"]}},
    ],
}


def validate(results: dict) -> list[str]:
    """Every way ``results`` departs from ``SCHEMA`` (empty when it conforms), plus the 1 MB cap."""
    import jsonschema

    problems = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(results)]
    if len(json.dumps(results)) > common.MAX_RESULTS_BYTES:
        problems.append(f"results.json is over {common.MAX_RESULTS_BYTES} bytes")
    tests = results.get("tests") or []
    if not problems and results.get("gradable") and tests:  # the sum is meaningful only for well-typed tests
        total, got = sum(t["max_points"] for t in tests), sum(t["points"] for t in tests)
        if total and abs(results["score"] - got / total) > 1e-9:
            problems.append(f"score {results['score']} is not the tests' {got} / {total}")
    return problems


def results_from(out: common.Outcome, config: common.Config) -> dict:
    meta = {"version": config.grader_version, "assignment": config.assignment}
    if out.report is None:
        why = out.ungradable or out.problem
        meta["error"] = "ungradable" if out.ungradable else "not graded"
        return {"gradable": False, "score": 0.0, "format_errors": [why],
                "message": why + " This attempt was not counted.", "autograde": meta}
    rep = out.report
    names = common.test_names(config.assignment)
    tests = []
    for t in rep["tests"]:
        failures = [line for line in t["feedback"].splitlines() if line.startswith("✗")]
        tests.append({
            "name": t["grade_id"],
            "description": names.get(t["grade_id"], {}).get("what", ""),
            "points": t["score"],
            "max_points": t["max_score"],
            "message": "\n".join(failures) if failures else "passed",
            "output": t["feedback"],
        })
    notes = common.student_notes(rep)
    lines = [f"{config.assignment}: {rep['score']:g} / {rep['max_score']:g} points, graded by the course's autograder "
             f"(version {config.grader_version}); grader seed {rep['seed']} (quote it if you ask about a result).",
             common.protection_sentence(rep)]
    meta.update(seed=rep["seed"], device=rep["device"], protections=rep["protections"],
                sandbox_unavailable=rep["platform"]["sandbox_unavailable"],
                tests=[{"grade_id": t["grade_id"], "score": t["score"], "max_score": t["max_score"]} for t in rep["tests"]])
    return common.capped({
        "gradable": True,
        "score": rep["score"] / rep["max_score"] if rep["max_score"] else 0.0,
        "message": " ".join(lines),
        "output": "Notes from running your notebook:\n" + "\n".join(f"- {n}" for n in notes) if notes else "",
        "tests": tests,
        "autograde": meta,
    })


def main(argv: list[str] | None = None) -> int:
    """Grade ``<root>/student`` and write ``<root>/results/results.json``; always exits 0 (PrairieLearn
    counts a non-zero exit as a failed grading job)."""
    from ..safe_io import write_atomic

    root = common.platform_root(DEFAULT_ROOT)
    config = common.Config.load(common.SOURCE / common.CONFIG_NAME)
    out = common.run(root / "student", config)
    results = results_from(out, config)
    problems = validate(results)
    if problems:
        out.log.append("results failed the schema check: " + "; ".join(problems))
        results = results_from(common.Outcome(problem="The grader produced malformed results for this submission "
                                              "(a bug, not your fault); course staff can see why in the log.",
                                              seconds=out.seconds), config)
    write_atomic(root / "results" / "results.json", json.dumps(results, indent=1))
    for line in out.log:
        print(line)
    print(results["message"])
    for t in results.get("tests", []):
        print(f"  {t['points']:g} / {t['max_points']:g}  {t['name']}")
    sys.stdout.flush()
    return 0
