"""The book builds with warnings as errors, its pages load nothing from the internet, and its links hold.

The build fixture (`built_book`, in conftest.py) uses the execution cache in _build/.jupyter_cache, so
after the first build this takes seconds. What a reader meets in a browser is in test_browser.py.
"""

import re
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests.browser import chapter_number, parse, toc_files, toc_pages

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


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


# --- links, anchors, navigation --------------------------------------------------------------------

def built_pages(html_dir: Path) -> list[Path]:
    """Every page of the site (theme templates under _static and page sources under _sources excluded)."""
    return sorted(p for p in html_dir.rglob("*.html")
                  if not p.relative_to(html_dir).parts[0] in {"_static", "_sources", "_images"})


def internal_target(page: Path, href: str, html_dir: Path) -> tuple[Path, str] | None:
    """(file, fragment) that ``href`` on ``page`` points to inside the site, or None for other sites."""
    parts = urllib.parse.urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:", "data:")):
        return None
    path = urllib.parse.unquote(parts.path)
    target = page if not path else (page.parent / path)
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target.resolve(), urllib.parse.unquote(parts.fragment)


@pytest.mark.slow
def test_internal_links_and_anchors_resolve(built_book):
    pages = built_pages(built_book)
    parsed = {p.resolve(): parse(p) for p in pages}
    broken = []
    checked = 0
    for page in pages:
        for href, _ in parsed[page.resolve()].links:
            found = internal_target(page, href, built_book)
            if found is None:
                continue
            target, fragment = found
            checked += 1
            where = f"{page.relative_to(built_book)}: {href}"
            if not target.is_relative_to(built_book.resolve()):
                broken.append(f"{where} leaves the site")
            elif not target.is_file():
                broken.append(f"{where}: no file {target.relative_to(built_book.resolve())}")
            elif fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                if fragment not in ids:
                    broken.append(f"{where}: no id {fragment!r} on {target.relative_to(built_book.resolve())}")
    assert checked > 20, f"only {checked} internal links found: is the site built?"
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])


@pytest.mark.slow
def test_sidebar_lists_the_chapters_in_number_order(built_book):
    chapters = [p for p in toc_pages() if chapter_number(p) is not None]
    numbers = [chapter_number(p) for p in chapters]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), \
        f"_toc.yml lists the chapters out of order or twice: {numbers}"
    for page in toc_pages():
        sidebar = parse(built_book / page).sidebar
        seen = []
        for href, text in sidebar:
            path = urllib.parse.urlsplit(href).path
            name = Path(path).name if path else Path(page).name  # the current page's entry links to "#"
            n = chapter_number(name)
            if n is not None:
                assert re.match(rf"{n}\.\s", text), \
                    f"{page}: the sidebar entry for {name} reads {text!r}; chapter {n}'s title must start '{n}. '"
                seen.append(n)
        assert seen == numbers, f"{page}: the sidebar lists chapters {seen}, the toc {numbers}"


@pytest.mark.slow
def test_each_chapter_links_to_its_assignment(built_book):
    chapters = [p for p in toc_pages() if chapter_number(p) is not None]
    assert chapters, "no numbered chapters (book/NN_topic.md) in _toc.yml"
    missing = []
    for page in chapters:
        stem = Path(page).stem
        hrefs = [urllib.parse.urlsplit(h).path for h, _ in parse(built_book / page).links]
        to_list = any(Path(h).name == "assignments.html" for h in hrefs)
        to_notebook = any(h.endswith(".ipynb") and Path(h).name.startswith(stem[:3]) for h in hrefs)
        if not (to_list or to_notebook):
            missing.append(page)
    assert not missing, ("these chapters link neither to the Assignments page nor to their notebook "
                         f"(exercises/NN_*/): {missing}")


@pytest.mark.slow
def test_assignments_page_offers_every_released_notebook(built_book):
    page = built_book / "book" / "assignments.html"
    assert page.is_file(), "book/assignments.md is missing from _toc.yml"
    downloads = {Path(urllib.parse.unquote(urllib.parse.urlsplit(h).path)).name: h
                 for h, cls in parse(page).links if "download" in cls}
    released = sorted(p.name for p in (ROOT / "exercises").glob("*/*.ipynb"))
    assert released, "no released notebooks in exercises/"
    missing = [name for name in released if name not in downloads]
    assert not missing, f"the Assignments page has no download link for {missing} (add a {{download}} row to book/assignments.md)"
    for name in released:
        built = (page.parent / urllib.parse.unquote(downloads[name])).resolve()
        assert built.is_file(), f"{name}: the link {downloads[name]} points to no file"


# --- the deploy workflow, CI, figures ---------------------------------------------------------------

def test_pages_workflow_builds_with_warnings_as_errors_and_deploys():
    path = ROOT / ".github" / "workflows" / "book.yml"
    flow = yaml.safe_load(path.read_text())
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "push" in triggers, "the book should be published on push"
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    steps = build["steps"]
    uses = [s.get("uses", "") for s in steps]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "make book" in runs, "the workflow must build with `make book` (jupyter-book -W, warnings are errors)"
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "_build/.jupyter_cache"
    for pattern in ("book/**/*.md", "requirements.txt", "dropout_lib/**"):
        assert f"'{pattern}'" in cache["with"]["key"], f"the execution cache key must hash {pattern}"
    assert uses.index(cache["uses"]) < [i for i, s in enumerate(steps) if "make book" in s.get("run", "")][0]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" or "build" in deploy["needs"]
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
    assert deploy["environment"]["name"] == "github-pages"
    perms = {**flow.get("permissions", {}), **deploy.get("permissions", {})}
    assert perms.get("pages") == "write" and perms.get("id-token") == "write"


def test_make_test_installs_chromium_and_bubblewrap_first():
    """`.ci/run` runs `make test`, whose first step installs the Debian packages the tests need when missing."""
    import subprocess

    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script and "DROPOUT_SKIP_BROWSER" not in script, "CI must run make test, browser tests included"
    plan = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True).stdout
    deps = plan.find("apt-get install")
    assert deps != -1 and "bubblewrap" in plan and "chromium" in plan, "make test must install bwrap and chromium when missing"
    assert deps < plan.find("pytest"), "the packages must be installed before the tests run"


SAFE_CMAPS = {"gray", "grey", "Greys", "binary", "cividis", "viridis", "magma", "inferno", "plasma", "gist_yarg"}


def test_figures_use_colour_maps_readable_in_grey_and_by_colour_blind_readers():
    from dropout_lib import plots

    assert plots.MASK_CMAP in SAFE_CMAPS and plots.SEQUENTIAL_CMAP in SAFE_CMAPS
    okabe_ito = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442"}
    assert set(plots.COLORS) <= okabe_ito, "the line colours should come from the Okabe-Ito palette"
    unsafe = []
    for path in sorted([*ROOT.glob("book/*.md"), *ROOT.glob("dropout_lib/*.py")]):
        for m in re.finditer(r"""cmap\s*=\s*["']([\w.]+)["']|get_cmap\(\s*["']([\w.]+)["']""", path.read_text()):
            name = (m.group(1) or m.group(2)).removesuffix("_r")
            if name not in SAFE_CMAPS:
                unsafe.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not unsafe, ("colour maps that are not readable in greyscale or by colour-blind readers "
                        f"(use dropout_lib.plots.SEQUENTIAL_CMAP, cividis/viridis, or gray): {unsafe}")
