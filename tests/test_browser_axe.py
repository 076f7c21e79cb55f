"""The browser tests' accessibility step (tests/browser.py's JS_LEAVE_OUT_SEEN_BLOCKS and JS_AXE) on a tiny
site of its own. A module apart from test_browser.py: Playwright's sync API allows one browser session per
thread at a time, and test_browser.py keeps its session open for the whole module.
"""

import os

import pytest

from tests.browser import INSTALL_HINT, SKIP_ENV, find_chromium, open_browser, serve, visit

pytestmark = pytest.mark.slow


def test_axe_leaves_out_only_blocks_whose_styles_it_already_checked(tmp_path):
    """A code block repeated on a later page is taken out before axe runs there; one with a style not yet
    checked (here a grey too light to read) stays in, and axe reports its contrast."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: browser tests skipped on purpose")
    if find_chromium() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    code = '<pre><span style="color: #202020">x = 1</span></pre>'
    pale = '<pre><span style="color: #d8d8d8">y = 2</span></pre>'
    for name, body in (("a.html", code), ("b.html", code + code + pale)):
        (tmp_path / name).write_text(f'<!DOCTYPE html><html lang="en"><head><title>{name}</title></head>'
                                     f'<body><main><h1>{name}</h1>{body}</main></body></html>')
    seen: set[str] = set()
    with serve(tmp_path) as base, open_browser(base) as (context, network):
        first = visit(context, base, "a.html", network, axe_seen=seen, interact=False)
        later = visit(context, base, "b.html", network, axe_seen=seen, interact=False)
    assert first.axe_left_out == 0 and later.axe_left_out == 2
    assert [v["id"] for v in first.axe if v["impact"] == "serious"] == []
    assert [v["id"] for v in later.axe if v["impact"] == "serious"] == ["color-contrast"], later.axe
    assert "y = 2" in later.axe[[v["id"] for v in later.axe].index("color-contrast")]["nodes"][0]["html"]
