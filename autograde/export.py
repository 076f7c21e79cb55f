"""Taking an assignment to Gradescope or PrairieLearn, and their results back into nbgrader's gradebook.

``python -m autograde export gradescope ASSIGNMENT --out DIR`` writes ``DIR/autograder.zip``: ``setup.sh``
(the pinned environment from ``requirements.txt`` with PyTorch's CPU wheel, bubblewrap, the unprivileged
grading user), ``run_autograder``, ``requirements.txt``, ``autograde_platform.json`` (this export's
choices), the ``autograde`` package and the instructor's source notebook of this one assignment. Nothing
else: no other assignment's solutions, no tests, no chapters.

``python -m autograde export prairielearn ASSIGNMENT --out DIR`` writes the question folder ``DIR``:
``info.json`` (external grading: image, entrypoint, timeout, networking off), ``question.html`` (a
``pl-file-upload`` of one ``.ipynb`` and the external grader's results), ``clientFilesQuestion/`` (the
released notebook, for students to download), ``tests/`` (what ``/grade/tests`` holds in the container:
``run.sh``, the package, the source notebook, ``autograde_platform.json``) and ``image/`` (a Dockerfile
and ``requirements.txt`` for the grading image, which PrairieLearn never copies into a grading job).

On the platform, the entrypoints run ``autograde.platforms`` (see there), which calls the same
``grade_notebook`` as ``autograde grade``.

``python -m autograde import gradescope|prairielearn PATH --db URL`` stores what the platform graded in
nbgrader's gradebook through ``autograde.gradebook.Gradebook.record``, as ``autograde batch --db`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import uuid
import zipfile
from pathlib import Path

from . import __version__
from .platforms.common import CONFIG_NAME, GRADER_MB, KERNEL_MIN_MB, VISIBILITIES, Config

def _grade():
    """autograde.grade, imported when needed: the command line builds this parser for every command."""
    from . import grade

    return grade


TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Platform defaults, from their documentation: Gradescope gives an autograder 768 MB, half a CPU and 10
# minutes unless the instructor raises them; PrairieLearn's grading containers get 2 GiB and 0.9 CPU
# (its grader host's docker settings) and at most 600 s.
DEFAULTS = {
    "gradescope": {"timeout": 600, "memory_mb": 768, "cpus": 0.5},
    "prairielearn": {"timeout": 600, "memory_mb": 2048, "cpus": 0.9},
}
PL_MAX_TIMEOUT = 600
PL_IMAGE = "prairielearn/grader-python"
GRADER_USER = "autograde"
UUID_NAMESPACE = uuid.UUID("6f1d3c2e-8f0a-4a59-9d4b-2b7c51e0d613")  # fixed: a re-export keeps each question's uuid

GRADESCOPE_SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (an Ubuntu base image; 22.04
# by default). It installs the course's pinned environment from requirements.txt with PyTorch's CPU wheel
# (no CUDA packages), bubblewrap (the grader's sandbox, used wherever the container allows it), and the
# unprivileged user the notebooks are graded as.
# Written by `python -m autograde export gradescope {assignment}` (autograde {version}).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SRC=/autograder/source
VENV=/autograder/venv

apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap ca-certificates

# Python 3.11 or later (the pins need it): the image's own if recent enough, else Ubuntu's package.
pick_python() {{
  for v in 3.13 3.12 3.11; do
    if command -v "python$v" >/dev/null && "python$v" -c 'import ensurepip, venv' 2>/dev/null; then
      echo "python$v"; return 0
    fi
  done
  return 1
}}
if ! PY=$(pick_python); then
  for v in 3.12 3.11; do
    apt-get install -y -qq --no-install-recommends "python$v" "python$v-venv" && break || true
  done
  PY=$(pick_python)
fi

"$PY" -m venv "$VENV"
# PyTorch from its CPU-only index, alone and without dependencies (they are pinned in requirements.txt);
# then everything else from PyPI, where the installed torch already satisfies its pin.
"$VENV/bin/pip" install --quiet --no-cache-dir --no-deps --index-url {torch_index} "$(grep -E '^torch==' "$SRC/requirements.txt")"
"$VENV/bin/pip" install --quiet --no-cache-dir -r "$SRC/requirements.txt"
if "$VENV/bin/pip" list 2>/dev/null | grep -qi '^nvidia-'; then echo "CUDA packages were installed" >&2; exit 1; fi

# One copy of autograde, in $SRC: the grader imports it from there, every kernel through a link in the
# environment's site-packages (the sandbox binds the Python installation and $SRC/autograde, not $SRC).
ln -sfn "$SRC/autograde" "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/autograde"
"$VENV/bin/python" -m compileall -q "$SRC/autograde"
id -u {user} >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin {user}
chmod -R a+rX,go-w "$SRC" "$VENV"

# Fail the build now rather than at the first submission.
"$VENV/bin/python" -I -c "import sys; sys.path.insert(0, '$SRC'); import torch, autograde.grade, autograde.platforms.gradescope; assert torch.version.cuda is None, torch.__version__"
echo "autograder ready: $("$VENV/bin/python" --version), torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'), $(bwrap --version)"
"""

GRADESCOPE_RUN = """#!/usr/bin/env bash
# Gradescope runs this, as root in /autograder, for every submission: it grades the one notebook in
# /autograder/submission and writes /autograder/results/results.json (see autograde/platforms/gradescope.py).
# AUTOGRADE_PLATFORM_ROOT moves /autograder (the tests use it); AUTOGRADE_PYTHON picks the interpreter.
# Written by `python -m autograde export gradescope {assignment}` (autograde {version}).
ROOT="${{AUTOGRADE_PLATFORM_ROOT:-/autograder}}"
PY="${{AUTOGRADE_PYTHON:-$ROOT/venv/bin/python}}"
# The grading user reads the grader; the submission (graded from a copy) and the metadata stay root's.
chmod a+x "$ROOT" 2>/dev/null
chmod -R go-rwx "$ROOT/submission" "$ROOT/submission_metadata.json" 2>/dev/null
exec "$PY" -I -c 'import sys; sys.path.insert(0, sys.argv[1]); from autograde.platforms.gradescope import main; sys.exit(main())' "$ROOT/source"
"""

PL_RUN = """#!/bin/sh
# PrairieLearn's external grader runs this, as root, in a fresh container for every submission
# (externalGradingOptions.entrypoint in info.json): it grades the one notebook in /grade/student and
# writes /grade/results/results.json (see autograde/platforms/prairielearn.py).
# AUTOGRADE_PLATFORM_ROOT moves /grade (the tests use it); AUTOGRADE_PYTHON picks the interpreter.
# Written by `python -m autograde export prairielearn {assignment}` (autograde {version}).
ROOT="${{AUTOGRADE_PLATFORM_ROOT:-/grade}}"
PY="${{AUTOGRADE_PYTHON:-/autograde-venv/bin/python}}"
chmod a+x "$ROOT" 2>/dev/null
chmod -R a+rX,go-w "$ROOT/tests" 2>/dev/null
chmod -R go-rwx "$ROOT/student" "$ROOT/data" 2>/dev/null
if ! "$PY" -I -c 'import torch, nbclient, nbformat, psutil, jsonschema' 2>/dev/null; then
  mkdir -p "$ROOT/results"
  cat > "$ROOT/results/results.json" <<'EOF'
{not_ready}
EOF
  echo "The grading image lacks the course's Python environment ($PY). Build it from the export's image/Dockerfile, push it, and name it in info.json's externalGradingOptions.image." >&2
  exit 0
fi
exec "$PY" -I -c 'import sys; sys.path.insert(0, sys.argv[1]); from autograde.platforms.prairielearn import main; sys.exit(main())' "$ROOT/tests"
"""
PL_NOT_READY = ("This question's grading image is not set up yet (it lacks the course's Python environment), so "
                "your notebook was not graded and this attempt was not counted. Please tell your course staff.")

PL_DOCKERFILE = """# The grading image for PrairieLearn's external grader: the course's pinned Python environment (PyTorch's
# CPU wheel, no CUDA packages), bubblewrap, and the unprivileged user the notebooks are graded as. The grader
# itself is not in the image: PrairieLearn copies the question's tests/ folder to /grade/tests for every job,
# and kernels import it through a link in site-packages to /grade/tests/autograde (dangling until then).
#   docker build --platform linux/amd64 -t YOUR_DOCKERHUB_USER/dropout-grader:{version} .
#   docker push YOUR_DOCKERHUB_USER/dropout-grader:{version}
# then export again with --image YOUR_DOCKERHUB_USER/dropout-grader:{version} (or edit info.json) and sync
# the image in PrairieLearn (course > Sync > Images).
# Written by `python -m autograde export prairielearn {assignment}` (autograde {version}).
FROM python:3.11-slim-bookworm
RUN apt-get update \\
 && apt-get install -y --no-install-recommends bubblewrap \\
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /autograde-venv \\
 && /autograde-venv/bin/pip install --no-cache-dir --no-deps --index-url {torch_index} "$(grep -E '^torch==' /tmp/requirements.txt)" \\
 && /autograde-venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt \\
 && ! /autograde-venv/bin/pip list 2>/dev/null | grep -qi '^nvidia-' \\
 && ln -s /grade/tests/autograde "$(/autograde-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/autograde" \\
 && useradd --system --no-create-home --shell /usr/sbin/nologin {user}
"""

PL_QUESTION = """<pl-question-panel>
  <p>
    Upload your completed notebook for <strong>{title}</strong>: one <code>.ipynb</code> file, normally
    <code>{assignment}.ipynb</code>. If you do not have it yet, download
    <a href="{{{{options.client_files_question_url}}}}/{assignment}.ipynb" download>{assignment}.ipynb</a>,
    fill in every <code>YOUR CODE HERE</code>, and run the visible test under each function.
  </p>
  <p>
    Before you upload it, choose <em>Kernel &rarr; Restart Kernel and Run All Cells</em> in JupyterLab and
    save. The grader runs your notebook from the top in a fresh kernel and checks each function on new
    random inputs; hidden tests extend the visible ones, and each task's text states its whole contract.
    A file that cannot be graded (not a notebook, another assignment's notebook) does not cost an attempt.
  </p>
</pl-question-panel>

<pl-file-upload file-patterns="*.ipynb"></pl-file-upload>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""


def _grader_files(aid: str, root: Path | None = None) -> list[tuple[str, Path]]:
    """(path in the export, file here): the autograde package (Python files only) and this assignment's source."""
    root = root or _grade().COURSE_ROOT
    files = [(p.relative_to(root).as_posix(), p) for p in sorted((root / "autograde").rglob("*.py"))
             if "__pycache__" not in p.parts]
    src = _grade().assignments(root)[aid].source
    files.append((f"solutions/{aid}/{src.name}", src))
    return files


def _config(platform: str, aid: str, seed, timeout, memory_mb, cpus, hidden_visibility="after_published") -> Config:
    from .platforms.common import all_answer_ids

    d = DEFAULTS[platform]
    return Config(platform=platform, assignment=aid, timeout_s=int(timeout or d["timeout"]),
                  memory_mb=int(memory_mb or d["memory_mb"]), cpus=float(cpus or d["cpus"]), seed=seed,
                  hidden_visibility=hidden_visibility, grader_user=GRADER_USER, answer_ids=all_answer_ids())


def _check(platform: str, aid: str, config: Config) -> list[str]:
    """Refuse what cannot work; return warnings about what will not work until the instructor acts."""
    g = _grade()
    if aid not in g.assignments():
        raise g.GradingError(f"There is no assignment {aid!r} in {g.COURSE_ROOT / 'solutions'}; known assignments: "
                             f"{', '.join(g.assignments()) or 'none'}.")
    if platform == "prairielearn" and config.timeout_s > PL_MAX_TIMEOUT:
        raise g.GradingError(f"PrairieLearn allows at most {PL_MAX_TIMEOUT} s for an external grading job; "
                           f"--timeout {config.timeout_s} is more.")
    if config.hidden_visibility not in VISIBILITIES:
        raise g.GradingError(f"--hidden-visibility must be one of {', '.join(VISIBILITIES)}.")
    warnings = []
    need = GRADER_MB + KERNEL_MIN_MB
    if config.memory_mb < need:
        where = ("Gradescope: the assignment's Settings > Autograder settings > memory" if platform == "gradescope"
                 else "the grading containers' memory (PrairieLearn's grader hosts)")
        warnings.append(f"grading needs at least {need} MB of memory and you assumed {config.memory_mb} MB: raise it "
                        f"({where}). Until then every submission is answered with a note to course staff, not graded. "
                        "The grader reads the real size from the container, so exporting again is not needed.")
    return warnings


def _write(path: Path, text: str, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _title(aid: str) -> str:
    """The source notebook's first Markdown heading, else the assignment id."""
    g = _grade()
    for cell in g.source(g.assignments()[aid])[0].cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return aid


def export_gradescope(aid: str, out: Path, seed=None, timeout=None, memory_mb=None, cpus=None,
                      hidden_visibility: str = "after_published") -> tuple[Path, list[str]]:
    """Write ``out/autograder.zip``; return its path and warnings for the instructor."""
    config = _config("gradescope", aid, seed, timeout, memory_mb, cpus, hidden_visibility)
    warnings = _check("gradescope", aid, config)
    fmt = {"assignment": aid, "version": __version__, "torch_index": TORCH_CPU_INDEX, "user": GRADER_USER}
    entries: list[tuple[str, bytes, bool]] = [
        ("setup.sh", GRADESCOPE_SETUP.format(**fmt).encode(), True),
        ("run_autograder", GRADESCOPE_RUN.format(**fmt).encode(), True),
        ("requirements.txt", (_grade().COURSE_ROOT / "requirements.txt").read_bytes(), False),
        (CONFIG_NAME, config.dumps().encode(), False),
    ]
    entries += [(name, src.read_bytes(), False) for name, src in _grader_files(aid)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / "autograder.zip"
    tmp = out / ".autograder.zip.tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, executable in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: the same export, the same bytes
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, dest)
    return dest, warnings


PL_MANAGED = ("info.json", "question.html", "clientFilesQuestion", "tests", "image")


def export_prairielearn(aid: str, out: Path, seed=None, timeout=None, memory_mb=None, cpus=None,
                        image: str = PL_IMAGE) -> tuple[Path, list[str]]:
    """Write the question folder ``out``; return it and warnings for the instructor.

    An existing folder is updated only if it is one of these exports (its info.json has the same uuid):
    a re-export replaces the files it wrote and keeps anything else the instructor added."""
    config = _config("prairielearn", aid, seed, timeout, memory_mb, cpus)
    warnings = _check("prairielearn", aid, config)
    out = Path(out)
    qid = str(uuid.uuid5(UUID_NAMESPACE, f"dropout-course/{aid}"))
    if out.exists() and any(out.iterdir()):
        try:
            ours = json.loads((out / "info.json").read_text(encoding="utf-8")).get("uuid") == qid
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise _grade().GradingError(f"{out} exists and is not this assignment's PrairieLearn export; choose a new folder.")
    if image == PL_IMAGE:
        warnings.append(f"info.json names PrairieLearn's stock image {PL_IMAGE}, which lacks the course's pinned "
                        f"environment (PyTorch, nbgrader, ...): build {out / 'image' / 'Dockerfile'}, push it to "
                        "Docker Hub, and export again with --image YOU/dropout-grader:TAG. Until then every submission "
                        "is answered 'not set up yet' without costing the student an attempt.")
    fmt = {"assignment": aid, "version": __version__, "torch_index": TORCH_CPU_INDEX, "user": GRADER_USER,
           "title": _title(aid)}
    not_ready = json.dumps({"gradable": False, "score": 0.0, "format_errors": [PL_NOT_READY], "message": PL_NOT_READY,
                            "autograde": {"version": __version__, "assignment": aid, "error": "not graded"}})
    info = {
        "uuid": qid,
        "title": f"{fmt['title']} (notebook upload)",
        "topic": "Dropout",
        "tags": ["autograde", "notebook", aid],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": image,
            "entrypoint": "/grade/tests/run.sh",
            "timeout": config.timeout_s,
            "enableNetworking": False,
        },
    }
    course = _grade().COURSE_ROOT
    release = course / "exercises" / aid / f"{aid}.ipynb"
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        q = Path(tmp) / "q"
        _write(q / "info.json", json.dumps(info, indent=2) + "\n")
        _write(q / "question.html", PL_QUESTION.format(**fmt))
        (q / "clientFilesQuestion").mkdir()
        shutil.copyfile(release, q / "clientFilesQuestion" / f"{aid}.ipynb")
        _write(q / "tests" / "run.sh", PL_RUN.format(**fmt, not_ready=not_ready), executable=True)
        _write(q / "tests" / CONFIG_NAME, config.dumps())
        for name, src in _grader_files(aid):
            (q / "tests" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, q / "tests" / name)
        _write(q / "image" / "Dockerfile", PL_DOCKERFILE.format(**fmt))
        shutil.copyfile(course / "requirements.txt", q / "image" / "requirements.txt")
        out.mkdir(parents=True, exist_ok=True)
        for name in PL_MANAGED:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            shutil.move(str(q / name), target)
    return out, warnings


# --- results back into nbgrader's gradebook --------------------------------------------------------------
def gradescope_reports(path: Path, student_key: str = "email") -> tuple[list[dict], list[str]]:
    """Reports (``assignment``, ``student``, ``tests``) from a Gradescope download: a folder or zip holding
    the results.json files this grader wrote (Gradescope's *Export Submissions*), found wherever they are,
    or a submission_metadata.yml whose entries embed them. Each result names its students in
    ``extra_data.autograde.students`` (from Gradescope's ``submission_metadata.json``)."""
    found, skipped = [], []
    for where, data in _walk_download(Path(path)):
        for res in _our_results(_unsymbol(data)):
            meta = res["extra_data"]["autograde"]
            if meta.get("error"):
                skipped.append(f"{where}: not graded ({meta['error']}): {str(res.get('output', ''))[:120]}")
                continue
            tests = [{"grade_id": t["extra_data"]["grade_id"], "score": t["score"], "max_score": t.get("max_score")}
                     for t in res.get("tests", []) if isinstance(t.get("extra_data"), dict) and "grade_id" in t["extra_data"]]
            students = [s.get(student_key) for s in meta.get("students", []) if s.get(student_key)]
            if not students:
                skipped.append(f"{where}: no student's {student_key} in the result (graded outside Gradescope?)")
            for s in students:
                found.append({"assignment": meta["assignment"], "student": str(s), "tests": tests,
                              "score": res.get("score"), "seed": meta.get("seed"), "source": where})
    return found, skipped


def _walk_download(path: Path):
    """(name, parsed JSON or YAML) for every results.json / *.yml in a folder or a zip."""
    import yaml

    def parse(name: str, raw: bytes):
        try:
            return json.loads(raw) if name.endswith(".json") else yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError):
            return None

    wanted = (lambda n: n.endswith("results.json") or n.endswith(".yml") or n.endswith(".yaml"))
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if wanted(info.filename) and not info.is_dir() and info.file_size < 256 << 20:
                    yield info.filename, parse(info.filename, z.read(info))
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and not p.is_symlink() and wanted(p.name):
                yield str(p), parse(p.name, p.read_bytes())
    elif path.is_file():
        yield str(path), parse(path.name, path.read_bytes())


def _our_results(data):
    """Every dict inside ``data`` (keys already without YAML's Ruby-symbol ':') that is a Gradescope result
    this grader wrote."""
    if isinstance(data, list):
        for x in data:
            yield from _our_results(x)
    elif isinstance(data, dict):
        extra = data.get("extra_data")
        if isinstance(extra, dict) and isinstance(extra.get("autograde"), dict) and "tests" in data:
            yield data
            return
        for v in data.values():
            yield from _our_results(v)


def _unsymbol(x):
    """``x`` with Ruby-symbol keys (``:score``, as Gradescope's YAML writes them) made plain."""
    if isinstance(x, dict):
        return {(k[1:] if isinstance(k, str) and k.startswith(":") else k): _unsymbol(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unsymbol(v) for v in x]
    return x


def prairielearn_reports(path: Path) -> tuple[list[dict], list[str]]:
    """Reports from PrairieLearn's ``<assessment>_best_submissions.csv`` (or ``_final_`` / ``_all_``): its
    ``Feedback`` column holds each grading's results.json (under ``results``), its ``UID`` the student.
    Where a student has several graded submissions of a question, the highest score wins (the latest on a tie)."""
    import csv

    best: dict[tuple[str, str], dict] = {}
    skipped = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            try:
                feedback = json.loads(row.get("Feedback") or "null")
            except ValueError:
                feedback = None
            res = feedback.get("results", feedback) if isinstance(feedback, dict) else None
            meta = res.get("autograde") if isinstance(res, dict) else None
            if not isinstance(meta, dict):
                continue  # another question's row, or one graded by something else
            uid = row.get("UID") or row.get("uid") or row.get("Username")
            if not res.get("gradable", True) or meta.get("error") or "tests" not in meta:
                skipped.append(f"row {n} ({uid}): not graded: {str(res.get('message', ''))[:120]}")
                continue
            rep = {"assignment": meta["assignment"], "student": uid, "tests": meta["tests"],
                   "score": sum(t["score"] for t in meta["tests"]), "seed": meta.get("seed"), "source": f"row {n}"}
            key = (uid, meta["assignment"])
            if key not in best or rep["score"] >= best[key]["score"]:
                best[key] = rep
    return list(best.values()), skipped


def import_results(platform: str, path: Path, db_url: str, student_key: str = "email") -> tuple[int, list[str]]:
    """Record every graded result of a platform's download in the gradebook; return (count, skipped)."""
    from .gradebook import Gradebook

    g = _grade()
    path = Path(path)
    if not path.exists():
        raise g.GradingError(f"{path} does not exist.")
    if platform == "gradescope":
        reports, skipped = gradescope_reports(path, student_key)
    else:
        reports, skipped = prairielearn_reports(path)
    if not reports:
        raise g.GradingError(
            f"{path} holds no results written by this course's {platform} autograder"
            + (f" ({len(skipped)} ungraded: {skipped[0]})" if skipped else "")
            + (". Download Gradescope's Export Submissions zip for the assignment." if platform == "gradescope"
               else ". Download the assessment's *_best_submissions.csv from its Downloads tab."))
    known = g.assignments()
    book = Gradebook(db_url)
    recorded = 0
    for rep in reports:
        if rep["assignment"] not in known:
            skipped.append(f"{rep['source']}: assignment {rep['assignment']} is not in this course's solutions/")
            continue
        book.record(rep)
        recorded += 1
    return recorded, skipped


# --- the command line -------------------------------------------------------------------------------------
def add_parsers(sub) -> None:
    e = sub.add_parser("export", help="package an assignment for Gradescope's autograder or PrairieLearn's external grader")
    e.add_argument("platform", choices=["gradescope", "prairielearn"])
    e.add_argument("assignment", help="assignment id, e.g. 02_bernoulli_masks")
    e.add_argument("--out", required=True, help="folder to write (Gradescope: DIR/autograder.zip; PrairieLearn: the question folder)")
    e.add_argument("--seed", type=int, help="grade every submission with this seed (default: a fresh one each time, recorded in the results)")
    e.add_argument("--timeout", type=int, help="the platform's time limit for one submission, in seconds (default 600)")
    e.add_argument("--memory-mb", type=int, help="the container's memory, if the grader cannot read it there "
                   "(defaults: Gradescope 768, PrairieLearn 2048)")
    e.add_argument("--cpus", type=float, help="the container's CPUs, if the grader cannot read them there "
                   "(defaults: Gradescope 0.5, PrairieLearn 0.9)")
    e.add_argument("--hidden-visibility", default="after_published", choices=VISIBILITIES,
                   help="Gradescope: when students see the hidden tests (default after_published)")
    e.add_argument("--image", default=PL_IMAGE, help=f"PrairieLearn: the grading image (default {PL_IMAGE}; build "
                   "image/Dockerfile and name yours)")
    e.set_defaults(func=cmd_export)
    i = sub.add_parser("import", help="store a platform's grades in nbgrader's gradebook")
    i.add_argument("platform", choices=["gradescope", "prairielearn"])
    i.add_argument("path", help="Gradescope: the Export Submissions zip or folder; PrairieLearn: *_best_submissions.csv")
    i.add_argument("--db", required=True, help="nbgrader gradebook URL, e.g. sqlite:///gradebook.db")
    i.add_argument("--student-key", default="email", choices=["email", "sid", "name", "id"],
                   help="Gradescope: which submitter field is the nbgrader student id (default email)")
    i.set_defaults(func=cmd_import)


def cmd_export(args) -> int:
    if args.platform == "gradescope":
        if args.image != PL_IMAGE:
            raise _grade().GradingError("--image is for PrairieLearn; Gradescope builds its image from setup.sh.")
        path, warnings = export_gradescope(args.assignment, Path(args.out), args.seed, args.timeout, args.memory_mb,
                                           args.cpus, args.hidden_visibility)
        print(f"wrote {path}: upload it under the assignment's Configure Autograder (Ubuntu base image), then set "
              "its memory, CPUs and timeout under Settings > Autograder settings")
    else:
        if args.hidden_visibility != "after_published":
            raise _grade().GradingError("--hidden-visibility is for Gradescope; PrairieLearn shows every test.")
        path, warnings = export_prairielearn(args.assignment, Path(args.out), args.seed, args.timeout, args.memory_mb,
                                             args.cpus, args.image)
        print(f"wrote the question folder {path}: put it under your course's questions/, build and push "
              f"{path / 'image' / 'Dockerfile'}, and add the question to an assessment")
    for w in warnings:
        print(f"warning: {w}")
    return 0


def cmd_import(args) -> int:
    n, skipped = import_results(args.platform, Path(args.path), args.db, args.student_key)
    print(f"recorded {n} graded submission(s) from {args.path} in {args.db}")
    for s in skipped:
        print(f"skipped {s}")
    return 0
