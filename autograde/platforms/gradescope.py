"""Gradescope's autograder: ``run_autograder`` calls ``main``, which writes ``/autograder/results/results.json``.

The format follows Gradescope's "Autograder Specifications" (gradescope-autograders.readthedocs.io/en/latest/specs/,
as of the autograder_samples repository's docs of January 2025): top-level ``score``, ``execution_time``,
``output`` (+ ``output_format``), ``visibility``, ``stdout_visibility``, ``extra_data`` and ``tests``, each
test with ``score``, ``max_score``, ``name``, ``number``, ``output`` (+ ``output_format``), ``visibility``
and ``extra_data``. ``SCHEMA`` encodes those fields (and nothing else) and ``validate`` checks a result
against it before it is written.

Visibility. A test is ``visible`` when the instructor's source notebook has at least one of its checks
outside the ``### BEGIN HIDDEN TESTS`` region; a hidden test gets the export's ``--hidden-visibility``
(``after_published`` unless chosen otherwise). While any test is hidden, the top-level output states only
the visible tests' points (Gradescope hides the total then, and the text must not give it away). No test
carries code: names, check summaries and the verdicts' messages only. What ``run_autograder`` prints goes
to Gradescope's stdout, which ``stdout_visibility: hidden`` keeps for course staff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import common

DEFAULT_ROOT = "/autograder"
VISIBILITY = ["hidden", "after_due_date", "after_published", "visible"]
FORMATS = ["text", "html", "simple_format", "md", "ansi"]
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "execution_time", "output", "stdout_visibility", "tests"],
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": FORMATS},
        "test_output_format": {"enum": FORMATS},
        "test_name_format": {"enum": FORMATS},
        "visibility": {"enum": VISIBILITY},
        "stdout_visibility": {"enum": VISIBILITY},
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "score", "max_score", "output", "visibility"],
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string", "minLength": 1},
                    "name_format": {"enum": FORMATS},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": {"enum": FORMATS},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": {"enum": VISIBILITY},
                    "extra_data": {"type": "object"},
                },
            },
        },
        "leaderboard": {"type": "array"},
    },
}


def validate(results: dict) -> list[str]:
    """Every way ``results`` departs from ``SCHEMA`` (empty when it conforms), plus the size cap."""
    import jsonschema

    problems = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(results)]
    if len(json.dumps(results)) > common.MAX_RESULTS_BYTES:
        problems.append(f"results.json is over {common.MAX_RESULTS_BYTES} bytes")
    return problems


def results_from(out: common.Outcome, config: common.Config, students: list[dict]) -> dict:
    """The platform's results.json for one ``Outcome``."""
    extra = {"autograde": {"version": config.grader_version, "assignment": config.assignment, "students": students}}
    if out.report is None:
        why = out.ungradable or out.problem
        extra["autograde"]["error"] = "ungradable" if out.ungradable else "not graded"
        return {"score": 0.0, "execution_time": round(out.seconds, 1), "output": why, "output_format": "text",
                "visibility": "visible", "stdout_visibility": "hidden", "extra_data": extra, "tests": []}
    rep = out.report
    names = common.test_names(config.assignment)
    tests, hidden_points, hidden_count, visible_score, visible_max = [], 0.0, 0, 0.0, 0.0
    for i, t in enumerate(rep["tests"], 1):
        info = names.get(t["grade_id"], {"visible": True, "what": ""})
        visible = info["visible"] or config.hidden_visibility == "visible"
        if visible:
            visible_score += t["score"]
            visible_max += t["max_score"]
        else:
            hidden_points += t["max_score"]
            hidden_count += 1
        tests.append({
            "name": f"{t['grade_id']}: {info['what']}" if info["what"] else t["grade_id"],
            "number": str(i),
            "score": t["score"],
            "max_score": t["max_score"],
            "output": t["feedback"],
            "output_format": "text",
            "visibility": "visible" if visible else config.hidden_visibility,
            "extra_data": {"grade_id": t["grade_id"]},
        })
    if hidden_count:
        when = {"after_published": "when your instructor publishes the grades",
                "after_due_date": "after the due date"}[config.hidden_visibility]
        head = (f"Visible tests: {visible_score:g} / {visible_max:g} points. {hidden_count} hidden tests worth "
                f"{hidden_points:g} points were graded too; they and your total are shown {when}.")
    else:
        head = f"Score: {rep['score']:g} / {rep['max_score']:g}."
    lines = [f"{config.assignment}, graded by the course's autograder (version {config.grader_version}). {head}",
             f"Grader seed {rep['seed']} (quote it if you ask about a result).", common.protection_sentence(rep)]
    notes = common.student_notes(rep)
    if notes:
        lines.append("Notes from running your notebook:\n" + "\n".join(f"- {n}" for n in notes))
    extra["autograde"].update(seed=rep["seed"], device=rep["device"], protections=rep["protections"],
                              sandbox_unavailable=rep["platform"]["sandbox_unavailable"])
    return common.capped({
        "score": rep["score"], "execution_time": round(out.seconds, 1), "output": "\n\n".join(lines),
        "output_format": "text", "test_output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
        "extra_data": extra, "tests": tests,
    })


def _students(root: Path) -> list[dict]:
    """The submitters from ``submission_metadata.json`` (Gradescope writes it; absent when testing by hand)."""
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        return [{k: u.get(k) for k in ("email", "id", "name", "sid") if u.get(k) is not None}
                for u in meta.get("users", []) if isinstance(u, dict)]
    except (OSError, ValueError, AttributeError):
        return []


def main(argv: list[str] | None = None) -> int:
    """Grade ``<root>/submission`` and write ``<root>/results/results.json``; always exits 0."""
    from ..safe_io import write_atomic

    root = common.platform_root(DEFAULT_ROOT)
    config = common.Config.load(common.SOURCE / common.CONFIG_NAME)
    out = common.run(root / "submission", config)
    results = results_from(out, config, _students(root))
    problems = validate(results)
    if problems:  # a grader bug: say so rather than hand Gradescope a file it may misread
        out.log.append("results failed the schema check: " + "; ".join(problems))
        results = results_from(common.Outcome(problem="The grader produced malformed results for this submission "
                                              "(a bug, not your fault); course staff can see why in the log.",
                                              seconds=out.seconds), config, [])
    write_atomic(root / "results" / "results.json", json.dumps(results, indent=1))
    for line in out.log:
        print(line)
    print(results["output"])
    for t in results["tests"]:
        print(f"  {t['score']:g} / {t['max_score']:g}  {t['name']}")
    sys.stdout.flush()
    return 0
