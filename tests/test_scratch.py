"""A grading's scratch folder (autograde.kernel.Scratch) goes away whatever the kernel left in it, and removing
it twice, or removing a path that is already gone, touches nothing else."""

import os
import stat

from autograde.kernel import Scratch, remove_tree


def test_a_folder_the_kernel_made_unreadable_is_removed_too():
    scratch = Scratch()
    locked = scratch.box / "work" / "locked"
    (locked / "deep").mkdir(parents=True)
    (locked / "deep" / "left.bin").write_bytes(b"x" * 1000)
    os.chmod(locked / "deep", 0)
    os.chmod(locked, 0)
    with scratch:
        pass
    assert not scratch.root.exists()


def test_removing_again_or_a_missing_path_leaves_the_parent_alone(tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir(mode=0o755)
    os.chmod(parent, 0o755)
    gone = parent / "gone"
    remove_tree(gone)
    gone.mkdir()
    remove_tree(gone)
    remove_tree(gone)
    assert stat.S_IMODE(parent.stat().st_mode) == 0o755 and not gone.exists()
