"""The published book as readers meet it: every page of _toc.yml in headless Chromium, offline.

One browser session visits every page once (tests/browser.py's `visit`); the tests below assert on
what it saw. The site is served from _build/html on 127.0.0.1; any request elsewhere is aborted and
fails the tests. Needs Debian's Chromium (`apt-get install chromium`; .ci/run installs it): without it
these tests FAIL and say how to install it, unless DROPOUT_SKIP_BROWSER=1 skips them on purpose.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.browser import (
    AXE,
    INSTALL_HINT,
    SKIP_ENV,
    alt_problem,
    chapter_number,
    find_chromium,
    open_browser,
    parse,
    serve,
    toc_pages,
    visit,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SEARCH_PAGE = "search.html?q=dropout"


@pytest.fixture(scope="module")
def site(built_book):
    with serve(built_book) as base:
        yield base


@pytest.fixture(scope="module")
def browser(site):
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: browser tests skipped on purpose")
    if find_chromium() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the playwright Python package is missing: `make test` installs requirements.txt", pytrace=False)
    with open_browser(site) as (context, network):
        yield context, network


@pytest.fixture(scope="module")
def reports(browser, site):
    """One visit per page of _toc.yml (and the search page), in one browser session."""
    context, network = browser
    axe_seen: set[str] = set()  # text styles of code and math blocks already checked by axe in this session
    return {page: visit(context, site, page, network, axe_seen=axe_seen) for page in [*toc_pages(), SEARCH_PAGE]}


def failures(reports, describe) -> str:
    lines = []
    for page, report in reports.items():
        lines += [f"{page}: {line}" for line in describe(report)]
    return "\n".join(lines)


def test_every_page_visit_completes(reports):
    """Loading, MathJax, the widgets and the images all finished within the time limits."""
    problems = failures(reports, lambda r: r.steps_failed)
    assert not problems, problems


def test_no_console_errors(reports):
    problems = failures(reports, lambda r: r.console_errors)
    assert not problems, "JavaScript errors in the console:\n" + problems


def test_no_request_fails_or_leaves_the_site(reports):
    problems = failures(reports, lambda r: [f"failed: {u}" for u in r.failed_requests]
                        + [f"went to another site (blocked): {u}" for u in r.external_requests])
    assert not problems, "the book must work offline, from its own files only:\n" + problems


def test_math_is_typeset(reports):
    def describe(r):
        out = [f"math not typeset: {t!r}" for t in r.math.get("untypeset", [])]
        out += [f"MathJax error: {e!r}" for e in r.math.get("errors", [])]
        out += [f"raw TeX in the text: {t!r}" for t in r.raw_tex]
        return out

    assert any(r.math.get("typeset") for r in reports.values()), "no page has typeset math: is MathJax loading?"
    problems = failures(reports, describe)
    assert not problems, problems


def test_every_image_loads_and_says_what_it_shows(reports):
    def describe(r):
        out = []
        for img in r.images:
            if not img["complete"] or not img["width"]:
                out.append(f"image did not load: {img['src']}")
            why = alt_problem(img["alt"])
            if why:
                out.append(f"{why}: {img['src']}")
        return out

    assert any(r.images for r in reports.values()), "no images on any page"
    problems = failures(reports, describe)
    assert not problems, problems


def test_widgets_render_from_saved_state(reports):
    def describe(r):
        w = r.widgets
        if not w.get("state"):
            return [f"{w.get('views')} widget views but no saved widget state"] if w.get("views") else []
        out = []
        if not w.get("views"):
            out.append("widget state saved but no widget view in the page")
        if w.get("rendered") != w.get("views"):
            out.append(f"{w.get('rendered')} of {w.get('views')} widgets rendered")
        if not w.get("elements"):
            out.append("no .widget-* elements: the ipywidgets HTML manager did not run")
        return out

    problems = failures(reports, describe)
    assert not problems, problems


def test_moving_a_slider_changes_what_is_shown(reports):
    sliders = [(page, s) for page, r in reports.items() for s in r.sliders]
    assert sliders, "no widget slider on any page: the chapters' interactive figures are missing"
    problems = [f"{page}: slider {s['index']} ({s['key']} from {s['before']['readout']}) changed nothing on screen"
                for page, s in sliders if not s["changed"]]
    assert not problems, "\n".join(problems)
    # The readout moved too, and the handle announces the readout (book/_static/book-a11y.js).
    for page, s in sliders:
        assert s["after"]["readout"] != s["before"]["readout"], (page, s)
        assert s["after"]["label"] and s["after"]["valuetext"] == s["after"]["readout"], (page, s)


def test_practice_answers_are_hidden_until_their_toggle_is_clicked(reports):
    problems = []
    for page, r in reports.items():
        if chapter_number(page) is None:
            continue
        solutions = [a for a in r.answers if a["solution"]]
        if not solutions:
            problems.append(f"{page}: no practice question with an answer (sphinx-exercise `solution`)")
        for a in r.answers:
            if a["visible"]:
                problems.append(f"{page}: {a['title']!r} shows its answer before any click: {a['text']!r}")
            elif not a["has_toggle"]:
                problems.append(f"{page}: {a['title']!r} has no toggle button")
            elif not a["visible_after_click"]:
                problems.append(f"{page}: {a['title']!r} stays hidden after its toggle is clicked")
    assert not problems, "\n".join(problems)


def test_pages_have_no_serious_accessibility_violations(reports):
    assert AXE.is_file(), f"{AXE.relative_to(ROOT)} is missing: `make test` installs it (npm ci)"

    def describe(r):
        return [f"axe {v['impact']} {v['id']}: {v['help']} -- {len(v['nodes'])} element(s), e.g. "
                f"{v['nodes'][0]['target']} {v['nodes'][0]['html']!r}"
                for v in r.axe if v["impact"] in ("serious", "critical")]

    assert all(r.axe is not None for r in reports.values())
    problems = failures(reports, describe)
    assert not problems, problems


def search_terms(built_book: Path, page: str) -> list[str]:
    """Two words to search for: the longest in the chapter's title, the longest in its first paragraph."""
    text = (built_book / page).read_text(encoding="utf-8")
    title = re.sub(r"<[^>]+>", "", re.search(r"<h1>(.*?)</h1>", text, re.S).group(1))
    body = text[text.find("<h1>"):]
    para = re.sub(r"<[^>]+>", " ", re.search(r"<p>(.*?)</p>", body, re.S).group(1))
    words = lambda s: sorted(re.findall(r"[A-Za-z]{5,}", s), key=len, reverse=True)  # noqa: E731
    in_title = words(title)[0]
    in_body = next(w for w in words(para) if w.lower() not in title.lower())
    return [in_title, in_body]


def test_search_finds_each_chapter(browser, site, built_book):
    context, _ = browser
    chapters = [p for p in toc_pages() if chapter_number(p) is not None]
    assert chapters
    page = context.new_page()
    problems = []
    try:
        for chapter in chapters:
            for term in search_terms(built_book, chapter):
                page.goto(f"{site}search.html?q={urllib.parse.quote(term)}")
                page.wait_for_function(
                    "() => { const s = document.querySelector('#search-results .search-summary');"
                    " return s && s.textContent.trim().length > 0; }")
                hrefs = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
                found = [h for h in hrefs if urllib.parse.urlsplit(h).path.endswith("/" + chapter)]
                if not found:
                    problems.append(f"searching {term!r} (in {chapter}) finds {hrefs[:5]} but not the chapter")
    finally:
        page.close()
    assert not problems, "\n".join(problems)


def test_every_released_notebook_downloads_from_the_assignments_page(site, built_book):
    """Every exercises/*/*.ipynb has a download link that fetches that notebook, valid, over HTTP."""
    import nbformat

    page = "book/assignments.html"
    links = {Path(urllib.parse.unquote(urllib.parse.urlsplit(h).path)).name: h
             for h, cls in parse(built_book / page).links if "download" in cls}
    released = sorted((ROOT / "exercises").glob("*/*.ipynb"))
    assert released
    problems = []
    for path in released:
        href = links.get(path.name)
        if href is None:
            problems.append(f"{path.relative_to(ROOT)}: no download link on {page}")
            continue
        url = urllib.parse.urljoin(site + page, href)
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200, url
            data = response.read()
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
        assert json.loads(data) == json.loads(path.read_bytes()), \
            f"{url} is not the current {path.relative_to(ROOT)}: rebuild the book"
    assert not problems, "\n".join(problems)

