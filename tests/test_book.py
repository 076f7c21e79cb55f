"""The book builds with warnings as errors, and its pages load nothing from the internet.

Uses the execution cache in _build/.jupyter_cache, so after the first build this takes seconds.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


@pytest.fixture(scope="session")
def built_book():
    if not (ROOT / "book" / "_static" / "vendor" / "html-manager" / "embed.js").exists():
        pytest.fail("the ipywidgets HTML manager is missing from book/_static/vendor: run the tests with 'make test', which installs it")
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", ".", "-W", "-n", "--keep-going"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, "book build failed:\n" + proc.stdout[-4000:] + proc.stderr[-4000:]
    return HTML


@pytest.mark.slow
def test_every_toc_page_is_built(built_book):
    for f in toc_files():
        assert (built_book / f"{f}.html").is_file(), f


@pytest.mark.slow
def test_no_page_loads_anything_from_the_internet(built_book):
    remote = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)
    for f in toc_files():
        page = (built_book / f"{f}.html").read_text(encoding="utf-8")
        hits = [m.group(0) for m in remote.finditer(page) if "rel=\"canonical\"" not in m.group(0)]
        assert not hits, f"{f}: {hits[:3]}"
