"""Per-student HTML feedback: every test's score and messages, never the code of hidden tests.

The page is self-contained (inline CSS, no scripts, nothing loaded from elsewhere) so it can be
mailed or released with ``nbgrader release_feedback``.
"""

from __future__ import annotations

import html
from pathlib import Path

from .safe_io import write_atomic
from .sandbox import Protections

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ccc; padding: .4rem; text-align: left; vertical-align: top; }}
.full {{ color: #05603a; }} .lost {{ color: #9b1c1c; }} pre {{ white-space: pre-wrap; margin: 0; font-size: .9rem; }}
</style></head><body>
<h1>{title}</h1>
<p>Score: <strong>{score:g} / {max_score:g}</strong>. Checks ran on {device}; grader seed {seed} (quote it if you ask about a result).</p>
<p class="sandbox">{sandbox}</p>
<table><thead><tr><th>test</th><th>points</th><th>what the grader saw</th></tr></thead><tbody>
{rows}
</tbody></table>
{notes}
</body></html>
"""


def render(report: dict) -> str:
    rows = []
    for t in report["tests"]:
        cls = "full" if t["score"] == t["max_score"] else "lost"
        rows.append(
            f'<tr><td>{html.escape(t["grade_id"])}</td><td class="{cls}">{t["score"]:g} / {t["max_score"]:g}</td>'
            f'<td><pre>{html.escape(t["feedback"])}</pre></td></tr>'
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.get("notes", []))
    try:
        sandbox = Protections(**report["protections"]).summary()
    except (KeyError, TypeError):
        sandbox = "sandbox: not recorded"
    return PAGE.format(
        title=html.escape(f"{report.get('student', '')} — {report['assignment']}"),
        score=report["score"], max_score=report["max_score"], device=html.escape(report.get("device", "")),
        seed=report.get("seed", ""), rows="\n".join(rows), sandbox=html.escape(sandbox),
        notes=f"<h2>Notes from running your notebook</h2><ul>{notes}</ul>" if notes else "",
    )


def write_feedback(report: dict, dest: Path) -> Path:
    write_atomic(dest, render(report))
    return dest
