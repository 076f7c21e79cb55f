"""A batch worker starts the next submission's kernel while it grades the current one (kernel.prestart).

The spare kernel must change nothing but the time: it has its own scratch folder, it is used only by a
grading with the same limits and device, a dead one is never handed to a student, and one that fails before
the notebook's first cell costs the student nothing (the notebook runs in a new kernel).
"""

import nbformat
import pytest

from autograde import kernel
from autograde.grade import assignments, grade_notebook
from autograde.kernel import Limits

pytestmark = pytest.mark.slow
A = "06_rnn_dropout"  # one of the quickest assignments to grade


@pytest.fixture(autouse=True)
def no_spare_left():
    yield
    kernel.discard_spare()


def test_the_next_grading_uses_the_spare_and_removes_its_folder_after():
    source = assignments()[A].source
    first = grade_notebook(source, A, "cpu", seed=1, prestart_next=True)
    spare = kernel._spare
    assert spare is not None and spare.scratch.box.is_dir()
    second = grade_notebook(source, A, "cpu", seed=1)
    assert kernel._spare is None  # taken by the second grading, and no new one asked for
    assert not spare.scratch.root.exists()
    for rep in (first, second):
        assert rep["score"] == rep["max_score"] and not rep["notes"], rep["notes"]
    assert [t["score"] for t in first["tests"]] == [t["score"] for t in second["tests"]]


def test_a_spare_for_other_limits_or_a_dead_one_is_dropped():
    kernel.prestart(Limits(memory_mb=2048), "cpu")
    other = kernel._spare
    assert kernel.take_spare(Limits(), "cpu") is None
    assert not other.scratch.root.exists()

    kernel.prestart(Limits(), "cpu")
    dead = kernel._spare
    dead.km.provisioner.process.kill()
    dead.km.provisioner.process.wait()
    assert kernel.take_spare(Limits(), "cpu") is None
    assert not dead.scratch.root.exists()


def test_a_spare_that_dies_before_the_first_cell_costs_the_student_nothing():
    kernel.prestart(Limits(), "cpu")
    spare = kernel.take_spare(Limits(), "cpu")
    assert spare is not None
    spare.km.provisioner.process.kill()  # dies after it was handed over, before any cell ran
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    with spare.scratch as scratch:
        run = kernel.execute(nb, scratch, Limits(), "cpu", spare=spare)
    assert run.notes == []
    assert nb.cells[0].outputs[0]["text"] == "42\n"
