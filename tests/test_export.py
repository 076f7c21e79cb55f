"""Gradescope and PrairieLearn exports: what they contain, and that they grade exactly as ``autograde grade``.

Fast tests build every assignment's exports and check their contents, the results' mapping and schemas on
a report made up from the source notebook, the limits derived from a container's size, and how a
submission folder is searched. The slow round trip (one assignment, 02_bernoulli_masks) unpacks each export
into a temporary root laid out as the platform lays it out (``/autograder/...``, ``/grade/...``, moved by
``AUTOGRADE_PLATFORM_ROOT``), runs the real entrypoint on the reference solution, the released notebook and
a broken submission, and compares scores and per-test points with ``autograde grade --seed`` on the same
files; then the submissions no grader can grade (no notebook, not JSON, another assignment's, several),
the results' schemas, hidden tests' code never shown, and the results' way back into nbgrader's gradebook.

The platform roots live in ``_build/``, beside this environment (its packages are hard-linked into the
platform's, not copied) and not under /tmp: the sandbox gives each kernel a private /tmp, which would hide a
grader unpacked under the host's /tmp (on the platforms it lives in /autograder or /grade).
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograde import notebook
from autograde.export import PL_MAX_TIMEOUT, export_gradescope, export_prairielearn
from autograde.grade import GradingError, assignments, source
from autograde.platforms import common, gradescope, prairielearn
from autograde.sandbox import Protections
from tests.notebooks import ROOT, release, submission, write

A = "02_bernoulli_masks"
SEED = 5
ALL = list(assignments())


def hidden_lines(aid: str) -> list[str]:
    """The code lines inside the source notebook's ### BEGIN/END HIDDEN TESTS regions."""
    lines = []
    for cell in source(assignments()[aid])[0].cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


# --- the exports' contents (every assignment) ------------------------------------------------------------
@pytest.mark.parametrize("aid", ALL)
def test_gradescope_zip_holds_what_the_grader_needs_and_nothing_else(aid, tmp_path):
    path, _ = export_gradescope(aid, tmp_path)
    assert path == tmp_path / "autograder.zip"
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        setup = z.read("setup.sh").decode()
        config = json.loads(z.read(common.CONFIG_NAME))
        assert z.read("requirements.txt") == (ROOT / "requirements.txt").read_bytes()
        assert z.read(f"solutions/{aid}/{aid}.ipynb") == assignments()[aid].source.read_bytes()
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "autograde").rglob("*.py") if "__pycache__" not in p.parts}
    assert names == {"setup.sh", "run_autograder", "requirements.txt", common.CONFIG_NAME,
                     f"solutions/{aid}/{aid}.ipynb"} | package
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111 and not modes["requirements.txt"] & 0o111
    # CPU wheels only: torch alone from PyTorch's CPU index, the rest from requirements.txt; bubblewrap; the user
    assert "--no-deps --index-url https://download.pytorch.org/whl/cpu" in setup and "grep -E '^torch=='" in setup
    assert "-r \"$SRC/requirements.txt\"" in setup and "apt-get install" in setup and "bubblewrap" in setup
    assert "useradd" in setup and "nvidia-" in setup and 'ln -sfn "$SRC/autograde"' in setup
    assert config["assignment"] == aid and config["seed"] is None and config["hidden_visibility"] == "after_published"
    assert set(config["answer_ids"]) == set(ALL)  # to recognise another assignment's notebook without its source
    assert (config["memory_mb"], config["cpus"], config["timeout_s"]) == (768, 0.5, 600)  # Gradescope's defaults


def test_gradescope_export_is_reproducible_and_warns_about_gradescopes_default_memory(tmp_path):
    first, warnings = export_gradescope(A, tmp_path / "a")
    second, _ = export_gradescope(A, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert any("768 MB" in w and "Autograder settings" in w for w in warnings)
    assert not export_gradescope(A, tmp_path / "c", memory_mb=4096)[1]


@pytest.mark.parametrize("aid", ALL)
def test_prairielearn_question_folder(aid, tmp_path):
    out, warnings = export_prairielearn(aid, tmp_path / aid)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    package = {f"tests/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / "autograde").rglob("*.py") if "__pycache__" not in p.parts}
    assert files == {"info.json", "question.html", f"clientFilesQuestion/{aid}.ipynb", "tests/run.sh",
                     f"tests/{common.CONFIG_NAME}", f"tests/solutions/{aid}/{aid}.ipynb", "image/Dockerfile",
                     "image/requirements.txt"} | package
    info = json.loads((out / "info.json").read_text())
    assert uuid.UUID(info["uuid"]) and info["type"] == "v3" and info["gradingMethod"] == "External"
    ext = info["externalGradingOptions"]
    assert ext["enabled"] is True and ext["entrypoint"] == "/grade/tests/run.sh" and ext["enableNetworking"] is False
    assert ext["image"] and 0 < ext["timeout"] <= PL_MAX_TIMEOUT
    assert any("Dockerfile" in w for w in warnings)  # the stock image lacks the pinned environment
    html = (out / "question.html").read_text()
    assert '<pl-file-upload file-patterns="*.ipynb">' in html and "<pl-external-grader-results>" in html
    assert f"{{{{options.client_files_question_url}}}}/{aid}.ipynb" in html
    # students download the release (no solutions, no hidden tests); the grader gets the source
    assert (out / "clientFilesQuestion" / f"{aid}.ipynb").read_bytes() == (ROOT / "exercises" / aid / f"{aid}.ipynb").read_bytes()
    student_side = (out / "clientFilesQuestion" / f"{aid}.ipynb").read_text() + html + json.dumps(info)
    assert not [line for line in hidden_lines(aid) if line in student_side]
    assert os.access(out / "tests" / "run.sh", os.X_OK)
    docker = (out / "image" / "Dockerfile").read_text()
    assert "--no-deps --index-url https://download.pytorch.org/whl/cpu" in docker and "bubblewrap" in docker
    assert "ln -s /grade/tests/autograde" in docker and "useradd" in docker
    assert (out / "image" / "requirements.txt").read_bytes() == (ROOT / "requirements.txt").read_bytes()


def test_prairielearn_reexport_keeps_the_uuid_and_refuses_a_foreign_folder(tmp_path):
    out, _ = export_prairielearn(A, tmp_path / "q", image="me/grader:1")
    first = json.loads((out / "info.json").read_text())
    (out / "notes.md").write_text("the instructor's own file")
    export_prairielearn(A, out, image="me/grader:2", timeout=300)
    again = json.loads((out / "info.json").read_text())
    assert again["uuid"] == first["uuid"] and again["externalGradingOptions"]["image"] == "me/grader:2"
    assert again["externalGradingOptions"]["timeout"] == 300 and (out / "notes.md").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "info.json").write_text('{"uuid": "someone else"}')
    with pytest.raises(GradingError, match="not this assignment"):
        export_prairielearn(A, other)
    with pytest.raises(GradingError, match="at most 600"):
        export_prairielearn(A, tmp_path / "slow", timeout=900)
    with pytest.raises(GradingError, match="no assignment"):
        export_gradescope("99_nothing", tmp_path / "none")


def test_export_and_import_are_on_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograde", "export", "gradescope", A, "--out", str(tmp_path),
                           "--hidden-visibility", "after_due_date", "--seed", "9"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "768 MB" in proc.stdout  # the warning about Gradescope's default memory
    with zipfile.ZipFile(tmp_path / "autograder.zip") as z:
        config = json.loads(z.read(common.CONFIG_NAME))
    assert config["seed"] == 9 and config["hidden_visibility"] == "after_due_date"
    proc = subprocess.run([sys.executable, "-m", "autograde", "import", "prairielearn", str(tmp_path / "none.csv"),
                           "--db", f"sqlite:///{tmp_path / 'gb.db'}"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_prairielearn_entrypoint_without_the_course_environment_costs_no_attempt(tmp_path):
    """The stock image (no PyTorch, no nbgrader): run.sh answers by itself, gradable false, and says why."""
    out, _ = export_prairielearn(A, tmp_path / "q")
    root = tmp_path / "grade"
    shutil.copytree(out / "tests", root / "tests")
    lay_out(root / "student", "release")
    proc = subprocess.run(["/bin/sh", str(root / "tests" / "run.sh")], capture_output=True, text=True,
                          env={**os.environ, common.ROOT_ENV: str(root), "AUTOGRADE_PYTHON": "/bin/false"})
    assert proc.returncode == 0 and "Dockerfile" in proc.stderr
    res = json.loads((root / "results" / "results.json").read_text())
    assert prairielearn.validate(res) == [] and res["gradable"] is False and "not set up yet" in res["message"]


def test_gradescope_import_finds_results_embedded_in_submission_metadata_yml(tmp_path):
    """Gradescope's export may carry the results inside submission_metadata.yml, with Ruby-symbol keys."""
    import yaml

    config = common.Config("gradescope", A, 600, 2048, 1.0)
    res = gradescope.results_from(common.Outcome(report=made_up_report(A)), config,
                                  [{"email": "ada@example.edu", "name": "Ada"}, {"email": "ben@example.edu", "name": "Ben"}])

    def symbols(x):
        if isinstance(x, dict):
            return {f":{k}": symbols(v) for k, v in x.items()}
        return [symbols(v) for v in x] if isinstance(x, list) else x

    (tmp_path / "submission_metadata.yml").write_text(yaml.safe_dump(
        {"submission_1": {":submitters": [{":name": "Ada"}], ":results": symbols(res)}}))
    from autograde.export import gradescope_reports

    reports, skipped = gradescope_reports(tmp_path)
    assert not skipped and sorted(r["student"] for r in reports) == ["ada@example.edu", "ben@example.edu"]
    assert {t["grade_id"]: t["score"] for t in reports[0]["tests"]} == {t["grade_id"]: t["score"] for t in made_up_report(A)["tests"]}
    assert [r["student"] for r in gradescope_reports(tmp_path, "name")[0]] == ["Ada", "Ben"]


# --- the pieces the entrypoints are made of ----------------------------------------------------------------
def test_limits_follow_the_container_and_refuse_one_too_small():
    config = common.Config("gradescope", A, timeout_s=600, memory_mb=768, cpus=0.5)
    with pytest.raises(common.Unfit, match="raise the autograder's memory"):
        common.limits_for(config, common.Resources(768, 0.5, "test"))
    limits, line = common.limits_for(config, common.Resources(3072, 0.5, "test"))
    assert limits.memory_mb == 3072 - common.GRADER_MB and limits.threads == 1 and limits.sandbox
    assert limits.total_timeout == 600 - 2 * common.OUTSIDE_NOTEBOOK_S  # half a CPU: twice the time outside
    assert 120 < limits.cell_timeout <= limits.total_timeout // 2  # slower CPU, longer cells, never the whole budget
    limits, _ = common.limits_for(config, common.Resources(8192, 4.0, "test"))
    assert limits.cell_timeout == 120 and limits.threads == 4
    with pytest.raises(common.Unfit, match="time limit"):
        common.limits_for(common.Config("gradescope", A, timeout_s=90, memory_mb=4096, cpus=1), common.Resources(4096, 1, "t"))


@pytest.mark.skipif(not shutil.which("taskset") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs taskset and at least two cores to pin the grader to one")
def test_container_resources_count_only_the_cores_this_process_may_use():
    """A container pinned to one core (a cpuset, taskset) has one CPU to plan threads and time for, whatever
    the host has; the old ceiling (os.cpu_count) gave it every core of the host when no quota was set."""
    code = "from autograde.platforms.common import container_resources as r; print(r().cpus)"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert float(out) <= 1.0, out


def test_a_submission_folder_must_hold_exactly_one_notebook(tmp_path):
    with pytest.raises(common.Ungradable, match="it is empty"):
        common.find_notebook(tmp_path, A)
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / f"{A}-checkpoint.ipynb").write_text("{}")
    with pytest.raises(common.Ungradable, match=r"No Jupyter notebook .*notes\.txt"):
        common.find_notebook(tmp_path, A)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / f"{A}.ipynb").write_text("{}")
    assert common.find_notebook(tmp_path, A) == tmp_path / "work" / f"{A}.ipynb"
    (tmp_path / "copy.ipynb").write_text("{}")
    with pytest.raises(common.Ungradable, match="holds 2 notebooks"):
        common.find_notebook(tmp_path, A)


def test_wrong_or_stripped_notebooks_are_refused_with_what_to_do(tmp_path):
    other = "04_inverted_dropout"
    with pytest.raises(common.Ungradable, match=f"is assignment {other}'s notebook"):
        common.check_submission(write(release(other), tmp_path, "mine"), A)
    ids = common.all_answer_ids()  # what an export carries: it works without the other assignments' sources
    assert set(ids[A]) == {"bernoulli_mask", "dropout_standard", *(f"answer_q{i}" for i in range(1, 6))}
    with pytest.raises(common.Ungradable, match=f"is assignment {other}'s notebook"):
        common.check_submission(write(release(other), tmp_path, "mine"), A, {A: ids[A], other: ids[other]})
    stripped = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def bernoulli_mask(shape, p): pass")])
    with pytest.raises(common.Ungradable, match="none of .* answer cells"):
        common.check_submission(write(stripped, tmp_path, "fresh"), A)
    (tmp_path / "bad.ipynb").write_text("{ not json")
    with pytest.raises(common.Ungradable, match="not a Jupyter notebook"):
        common.check_submission(tmp_path / "bad.ipynb", A)
    assert common.check_submission(write(release(A), tmp_path, A), A).cells


def made_up_report(aid: str, sandbox_unavailable=None) -> dict:
    """A report shaped like grade_notebook's, from the source notebook's tests (no grading)."""
    specs = source(assignments()[aid])[1]
    tests = [{"grade_id": s.grade_id, "score": s.points if i % 2 else 0.0, "max_score": s.points,
              "feedback": f"✓ {s.checks[0]}: all 5 properties hold" if i % 2 else f"✗ rate: about 30% kept ({s.grade_id})",
              "checks": []} for i, s in enumerate(specs)]
    return {"assignment": aid, "score": sum(t["score"] for t in tests), "max_score": sum(t["max_score"] for t in tests),
            "seed": 77, "device": "cpu", "notes": ["cell 3 raised NameError: name 'x' is not defined", "grader: internal"],
            "protections": Protections(sandbox="bubblewrap 0.8.0", namespaces=["user"]).to_json(), "tests": tests,
            "platform": {"sandbox_unavailable": sandbox_unavailable, "ran_as": None}}


@pytest.mark.parametrize("visibility", ["after_published", "visible"])
def test_gradescope_results_hide_the_hidden_tests_and_their_total(visibility):
    config = common.Config("gradescope", A, 600, 2048, 1.0, hidden_visibility=visibility)
    rep = made_up_report(A)
    res = gradescope.results_from(common.Outcome(report=rep, seconds=12.3), config, [{"email": "ada@example.edu"}])
    assert gradescope.validate(res) == []
    specs = {s.grade_id: s for s in source(assignments()[A])[1]}
    for t in res["tests"]:
        gid = t["extra_data"]["grade_id"]
        assert t["visibility"] == ("visible" if specs[gid].visible or visibility == "visible" else "after_published")
        assert t["name"].startswith(gid) and t["number"]
    hidden = [t for t in res["tests"] if t["visibility"] != "visible"]
    shown = res["output"] + "".join(t["name"] + t["output"] for t in res["tests"] if t["visibility"] == "visible")
    assert "seed 77" in res["output"] and "NameError" in res["output"] and "grader: internal" not in res["output"]
    if visibility == "after_published":
        assert hidden and f"/ {rep['max_score']:g}" not in res["output"] and "Visible tests" in res["output"]
        assert not [t["extra_data"]["grade_id"] for t in hidden if t["extra_data"]["grade_id"] in shown]
    else:
        assert not hidden and f"{rep['score']:g} / {rep['max_score']:g}" in res["output"]


def test_results_say_so_when_graded_without_the_sandbox():
    rep = made_up_report(A, sandbox_unavailable="bubblewrap is installed but cannot create namespaces here")
    config = common.Config("prairielearn", A, 600, 2048, 0.9)
    res = prairielearn.results_from(common.Outcome(report=rep), config)
    assert prairielearn.validate(res) == []
    assert "without the bubblewrap sandbox" in res["message"] and "cannot create namespaces" in res["message"]
    assert res["score"] == pytest.approx(rep["score"] / rep["max_score"])
    assert [(t["name"], t["points"]) for t in res["tests"]] == [(t["grade_id"], t["score"]) for t in rep["tests"]]
    gs = gradescope.results_from(common.Outcome(report=rep), common.Config("gradescope", A, 600, 2048, 1.0), [])
    assert "without the bubblewrap sandbox" in gs["output"]


def test_schema_checks_catch_what_the_platforms_would_misread():
    good_gs = gradescope.results_from(common.Outcome(ungradable="No notebook."), common.Config("gradescope", A, 600, 2048, 1), [])
    assert gradescope.validate(good_gs) == [] and good_gs["score"] == 0 and good_gs["tests"] == []
    for broken in ({**good_gs, "stdout_visibility": "sometimes"}, {k: v for k, v in good_gs.items() if k != "score"},
                   {**good_gs, "tests": [{"name": "t", "score": 1, "max_score": 1, "output": "", "visibility": "soon"}]},
                   {**good_gs, "scores": 1}):
        assert gradescope.validate(broken)
    good_pl = prairielearn.results_from(common.Outcome(ungradable="No notebook."), common.Config("prairielearn", A, 600, 2048, 1))
    assert prairielearn.validate(good_pl) == [] and good_pl["gradable"] is False and good_pl["format_errors"]
    for broken in ({k: v for k, v in good_pl.items() if k != "format_errors"},
                   {"gradable": True, "message": "", "score": 1.5, "tests": []},
                   {"gradable": True, "message": "", "score": 0.5, "tests": [{"name": "t", "points": 1, "max_points": 1}]},
                   {"gradable": True, "message": "", "score": 1, "tests": [{"name": "t", "points": "1", "max_points": 1}]}):
        assert prairielearn.validate(broken)


@pytest.mark.slow
def test_the_grading_child_reports_through_its_own_pipe(tmp_path):
    """grade_as: the request goes in on stdin, the answer comes back on a private pipe (here a refusal:
    an assignment the course does not have), as the user named (here this one)."""
    import getpass

    nb = write(release(A), tmp_path, A)
    code = ("import json, sys; from autograde.platforms import common; from autograde.kernel import Limits\n"
            "config = common.Config('gradescope', '99_nothing', 600, 4096, 1.0)\n"
            "try:\n    common.grade_as(sys.argv[1], sys.argv[2], config, Limits())\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, getpass.getuser(), str(nb)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert "GradingError There is no assignment '99_nothing'" in proc.stdout, proc.stdout + proc.stderr


# --- the round trip: the real entrypoints on real notebooks (slow) ----------------------------------------
def platform_base() -> Path:
    """A scratch folder beside this environment (hard links need the same file system), never under /tmp."""
    (ROOT / "_build").mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="platform-tests-", dir=ROOT / "_build"))


def platform_python(where: Path) -> Path:
    """A Python environment set up as setup.sh and the Dockerfile set theirs up: the pinned packages (this
    environment's, hard-linked rather than copied) and no autograde but the link ``use_package`` makes."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    shutil.rmtree(site)
    subprocess.run(["cp", "-al", sysconfig.get_paths()["purelib"], str(site)], check=True)
    for p in site.glob("__editable__*"):  # this checkout's editable install: the platform has none
        p.unlink()
    return python


def use_package(python: Path, package: Path) -> None:
    """Point the environment's ``autograde`` link at an exported package, as setup.sh / the Dockerfile do."""
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    link = site / "autograde"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(package)


def broken_submission() -> nbformat.NotebookNode:
    from tests.implementations.bernoulli_masks import ALL as IMPLS

    impl = {(i.target, i.key): i.source for i in IMPLS}
    return submission(A, {"bernoulli_mask": impl["bernoulli_mask", "swapped"],
                          "dropout_standard": impl["dropout_standard", "where"], "answer_q1": "answer_q1 = 'b'"},
                      extra_cells=[(3, "raise RuntimeError('a stray cell')")])


SUBMISSIONS = {"solution": lambda: nbformat.read(assignments()[A].source, as_version=4), "release": lambda: release(A),
               "broken": broken_submission}
UNGRADABLE = ("empty", "not_json", "wrong_assignment", "two_notebooks")


def lay_out(folder: Path, case: str) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if case in SUBMISSIONS:
        write(SUBMISSIONS[case](), folder, A)
    elif case == "not_json":
        (folder / f"{A}.ipynb").write_text("{ this is not json")
    elif case == "wrong_assignment":
        write(release("04_inverted_dropout"), folder, "04_inverted_dropout")
    elif case == "two_notebooks":
        write(release(A), folder, A)
        write(release(A), folder, f"{A} (1)")


def run_entrypoint(script: Path, root: Path, python: Path, env_extra=None) -> subprocess.CompletedProcess:
    env = {**os.environ, common.ROOT_ENV: str(root), "AUTOGRADE_PYTHON": str(python), **(env_extra or {})}
    return subprocess.run(["/bin/bash", str(script)], capture_output=True, text=True, env=env, timeout=900, cwd=root)


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """Every submission graded once by each route: ``autograde grade``, Gradescope's run_autograder (with the
    sandbox) and PrairieLearn's run.sh (with bubblewrap out of reach: the fallback a Docker container forces).
    Each platform's export is unpacked once, as the platform builds its image once, and graded submission
    after submission."""
    base = platform_base()
    files = tmp_path_factory.mktemp("files")
    out = {"grade": {}, "gradescope": {}, "prairielearn": {}, "logs": {}}
    try:
        for case in SUBMISSIONS:
            lay_out(files / case, case)
            proc = subprocess.run([sys.executable, "-m", "autograde", "grade", str(files / case / f"{A}.ipynb"), "--json",
                                   "--device", "cpu", "--assignment", A, "--seed", str(SEED)],
                                  capture_output=True, text=True, timeout=900, cwd=ROOT)
            assert proc.returncode == 0, proc.stderr
            out["grade"][case] = json.loads(proc.stdout)
        python = platform_python(base / "venv")

        zip_path, _ = export_gradescope(A, base / "gs-export", seed=SEED)
        root = base / "gs" / "autograder"
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(root / "source")
        (root / "source" / "run_autograder").chmod(0o755)
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
        use_package(python, root / "source" / "autograde")
        for case in (*SUBMISSIONS, *UNGRADABLE):
            lay_out(root / "submission", case)
            shutil.rmtree(root / "results", ignore_errors=True)
            (root / "submission_metadata.json").write_text(json.dumps(
                {"id": 1, "users": [{"email": f"{case}@example.edu", "id": 7, "name": case.title()}]}))
            proc = run_entrypoint(root / "run_autograder", root, python)
            out["logs"][("gradescope", case)] = proc.stdout + proc.stderr
            assert proc.returncode == 0, proc.stdout + proc.stderr
            out["gradescope"][case] = json.loads((root / "results" / "results.json").read_text())

        question, _ = export_prairielearn(A, base / "pl-question", seed=SEED, image="example/dropout-grader:1")
        root = base / "pl" / "grade"
        shutil.copytree(question / "tests", root / "tests")
        use_package(python, root / "tests" / "autograde")
        for case in (*SUBMISSIONS, *UNGRADABLE):
            lay_out(root / "student", case)
            shutil.rmtree(root / "results", ignore_errors=True)
            # PATH without bubblewrap: sandbox.require() fails as it does in a Docker container
            proc = run_entrypoint(root / "tests" / "run.sh", root, python, {"PATH": "/nonexistent"})
            out["logs"][("prairielearn", case)] = proc.stdout + proc.stderr
            assert proc.returncode == 0, proc.stdout + proc.stderr
            out["prairielearn"][case] = json.loads((root / "results" / "results.json").read_text())
        yield out
    finally:
        shutil.rmtree(base, ignore_errors=True)


def points(rep: dict) -> dict[str, float]:
    return {t["grade_id"]: t["score"] for t in rep["tests"]}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SUBMISSIONS))
def test_gradescope_gives_the_same_points_as_autograde_grade(round_trip, case):
    rep, res = round_trip["grade"][case], round_trip["gradescope"][case]
    assert gradescope.validate(res) == []
    assert {t["extra_data"]["grade_id"]: t["score"] for t in res["tests"]} == points(rep)
    assert {t["extra_data"]["grade_id"]: t["max_score"] for t in res["tests"]} == {t["grade_id"]: t["max_score"] for t in rep["tests"]}
    assert res["score"] == rep["score"] and res["extra_data"]["autograde"]["seed"] == SEED == rep["seed"]
    assert f"seed {SEED}" in res["output"] and res["stdout_visibility"] == "hidden"
    assert res["extra_data"]["autograde"]["sandbox_unavailable"] is None and "bubblewrap" in res["output"]
    assert res["extra_data"]["autograde"]["students"] == [{"email": f"{case}@example.edu", "id": 7, "name": case.title()}]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SUBMISSIONS))
def test_prairielearn_gives_the_same_points_without_the_sandbox_and_says_so(round_trip, case):
    rep, res = round_trip["grade"][case], round_trip["prairielearn"][case]
    assert prairielearn.validate(res) == []
    assert res["gradable"] is True and {t["name"]: t["points"] for t in res["tests"]} == points(rep)
    assert res["score"] == pytest.approx(rep["score"] / rep["max_score"])
    assert res["autograde"]["seed"] == SEED and f"seed {SEED}" in res["message"]
    assert "without the bubblewrap sandbox" in res["message"] and res["autograde"]["sandbox_unavailable"]


@pytest.mark.slow
def test_the_three_submissions_get_the_scores_they_deserve(round_trip):
    g = round_trip["grade"]
    assert g["solution"]["score"] == g["solution"]["max_score"] == 18
    assert g["release"]["score"] == 0
    assert 0 < g["broken"]["score"] < 18 and points(g["broken"])["test_bernoulli_mask"] == 0
    assert any("a stray cell" in n for n in g["broken"]["notes"])
    gs = round_trip["gradescope"]["broken"]
    assert "a stray cell" in gs["output"]  # notes about the student's own cells are shown to the student


@pytest.mark.slow
@pytest.mark.parametrize("case", UNGRADABLE)
def test_ungradable_submissions_get_one_paragraph_and_no_crash(round_trip, case):
    gs, pl = round_trip["gradescope"][case], round_trip["prairielearn"][case]
    assert gradescope.validate(gs) == [] and prairielearn.validate(pl) == []
    assert gs["score"] == 0 and gs["tests"] == [] and gs["extra_data"]["autograde"]["error"] == "ungradable"
    assert pl["gradable"] is False and len(pl["format_errors"]) == 1 and "not counted" in pl["message"]
    paragraph = gs["output"]
    assert paragraph == pl["format_errors"][0] and "\n" not in paragraph and "Traceback" not in paragraph
    assert {"empty": "No Jupyter notebook", "not_json": "not a Jupyter notebook",
            "wrong_assignment": "is assignment 04_inverted_dropout's notebook",
            "two_notebooks": "holds 2 notebooks"}[case] in paragraph


@pytest.mark.slow
def test_hidden_tests_code_never_reaches_any_output(round_trip):
    lines = hidden_lines(A)
    assert lines, "the assignment has hidden tests"
    texts = [json.dumps(r, ensure_ascii=False) for p in ("gradescope", "prairielearn") for r in round_trip[p].values()]
    texts += list(round_trip["logs"].values())
    for text in texts:
        assert not [line for line in lines if line in text]
        assert "BEGIN HIDDEN TESTS" not in text
    specs = {s.grade_id: s for s in source(assignments()[A])[1]}
    hidden_ids = [g for g, s in specs.items() if not s.visible]
    for res in round_trip["gradescope"].values():  # what a student sees before the grades are published
        shown = res["output"] + "".join(t["name"] + t["output"] for t in res["tests"] if t["visibility"] == "visible")
        assert not [g for g in hidden_ids if g in shown]
        assert all(t["visibility"] == "after_published" for t in res["tests"] if t["extra_data"]["grade_id"] in hidden_ids)


def nbgrader_scores(db_url: str) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        return {s.student.id: {g.name: g.auto_score for g in s.notebooks[0].grades}
                for s in gb.find_assignment(A).submissions}


@pytest.mark.slow
def test_gradescope_results_go_back_into_the_gradebook(round_trip, tmp_path):
    export = tmp_path / "submissions"  # laid out like Gradescope's Export Submissions download
    for i, case in enumerate((*SUBMISSIONS, "not_json"), 1):
        (export / f"submission_{i}").mkdir(parents=True)
        (export / f"submission_{i}" / "results.json").write_text(json.dumps(round_trip["gradescope"][case]))
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    proc = subprocess.run([sys.executable, "-m", "autograde", "import", "gradescope", str(export), "--db", db],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "recorded 3" in proc.stdout and "not graded (ungradable)" in proc.stdout
    got = nbgrader_scores(db)
    assert got == {f"{case}@example.edu": points(round_trip["grade"][case]) for case in SUBMISSIONS}


@pytest.mark.slow
def test_prairielearn_results_go_back_into_the_gradebook(round_trip, tmp_path):
    path = tmp_path / "HW2_best_submissions.csv"  # the columns PrairieLearn's Downloads tab writes (some of them)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["UID", "UIN", "Question", "Submission date", "Score", "Feedback", "Question points"])
        rows = [(f"{case}@example.edu", case) for case in (*SUBMISSIONS, "wrong_assignment")]
        rows.append(("solution@example.edu", "release"))  # a worse earlier attempt: the best one counts
        for uid, case in rows:
            res = round_trip["prairielearn"][case]
            w.writerow([uid, "1", f"{A}_upload", "2026-12-01", res.get("score"), json.dumps({"succeeded": True, "results": res}), ""])
        w.writerow(["other@example.edu", "2", "another_question", "2026-12-01", 1, json.dumps({"correct": True}), 1])
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    proc = subprocess.run([sys.executable, "-m", "autograde", "import", "prairielearn", str(path), "--db", db],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "recorded 3" in proc.stdout and "not graded" in proc.stdout
    assert nbgrader_scores(db) == {f"{case}@example.edu": points(round_trip["grade"][case]) for case in SUBMISSIONS}
