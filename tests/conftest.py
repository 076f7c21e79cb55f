"""Shared fixtures. Tests run on the CPU; CUDA tests skip with a note when no GPU is present."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine: CUDA paths are tested on a GPU machine only")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
