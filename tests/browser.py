"""Drive the built book in headless Chromium, offline: helpers for tests/test_browser.py and `make screenshots`.

The book is served from ``_build/html`` over ``http://127.0.0.1:<free port>`` by a thread in this
process (:func:`serve`). Chromium is Debian's ``/usr/bin/chromium``, driven by Playwright's Python
package (Playwright's own browser download is not used). Every request that does not go to that
server is recorded and aborted, so a page that would reach the internet fails the tests instead of
quietly working online.

:func:`visit` loads one page, waits until MathJax, the widgets and the images are done, and returns a
:class:`PageReport` of what a reader would meet: console errors, failed and external requests, raw
TeX, images without alt text, widgets that did not render, sliders that change nothing, answers not
hidden behind a toggle, and axe-core's accessibility violations. The tests assert on the reports.

    python -m tests.browser screenshots [OUT]   # PNGs of each page's first screen and each widget
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html.parser
import http.server
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

SKIP_ENV = "DROPOUT_SKIP_BROWSER"
INSTALL_HINT = (
    "Chromium is needed for the browser tests and was not found at /usr/bin/chromium. Install it "
    "with `apt-get update && apt-get install -y chromium` (Debian/Ubuntu, as root; .ci/run does this), "
    "or point DROPOUT_CHROMIUM at a Chromium binary. To skip the browser tests on purpose, set "
    f"{SKIP_ENV}=1 (CI never sets it)."
)
# Flags that work headless in a container as root, with nothing reaching out to Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 30_000

# Alt text that names the file type or the element instead of saying what the picture shows.
GENERIC_ALT = {"image", "img", "png", "jpg", "jpeg", "svg", "figure", "fig", "picture", "graph", "plot",
               "chart", "photo", "icon", "alt", "untitled", "output", "none", "null", "undefined"}

# TeX left in the text after MathJax ran: the math did not parse as math, or MathJax did not run.
RAW_TEX = [
    re.compile(r"\$\$"),
    re.compile(r"\\[()\[\]]"),
    re.compile(r"\\(?:begin|end)\{"),
    re.compile(r"(?<![\w$])\$(?=\S)[^$\n]{1,200}?(?<=\S)\$(?![\w$])"),  # $...$
    re.compile(r"\\(?:frac|mathbb|mathrm|odot|sum|sqrt|alpha|sigma|le|ge|cdot|times)\b"),
]


def toc_files() -> list[str]:
    """The documents of _toc.yml, in reading order (``book/intro``, ``book/02_bernoulli_masks``, ...)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def toc_pages() -> list[str]:
    """The built pages of _toc.yml, relative to _build/html (``book/intro.html``, ...)."""
    return [f"{f}.html" for f in toc_files()]


def chapter_number(page: str) -> int | None:
    """2 for ``book/02_bernoulli_masks.html``; None for pages that are not numbered chapters."""
    m = re.match(r"(\d\d)_", Path(page).name)
    return int(m.group(1)) if m else None


def find_chromium() -> str | None:
    for candidate in (os.environ.get("DROPOUT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".ipynb": "application/x-ipynb+json", ".js": "text/javascript", ".mjs": "text/javascript",
                      ".woff2": "font/woff2", ".woff": "font/woff", ".svg": "image/svg+xml"}

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@contextlib.contextmanager
def serve(directory: Path = HTML) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 at a free port from a daemon thread; yields the base URL (with /)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclasses.dataclass
class Network:
    """What left the site or failed, across every page of one browser context."""

    base: str
    external: list[str] = dataclasses.field(default_factory=list)

    def route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.base) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()


@contextlib.contextmanager
def open_browser(base: str, chromium: str | None = None) -> Iterator[tuple[object, Network]]:
    """One headless Chromium with a fresh profile; yields (context, network) with the route installed."""
    from playwright.sync_api import sync_playwright

    chromium = chromium or find_chromium()
    if chromium is None:
        raise RuntimeError(INSTALL_HINT)
    network = Network(base)
    with tempfile.TemporaryDirectory(prefix="dropout-chromium-") as profile, sync_playwright() as pw:
        # launch_persistent_context: the fresh --user-data-dir is ours (Playwright refuses it in args).
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT,
            accept_downloads=True, service_workers="block",
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", network.route)
        try:
            yield context, network
        finally:
            context.close()


@dataclasses.dataclass
class PageReport:
    page: str
    console_errors: list[str] = dataclasses.field(default_factory=list)
    failed_requests: list[str] = dataclasses.field(default_factory=list)
    external_requests: list[str] = dataclasses.field(default_factory=list)
    steps_failed: list[str] = dataclasses.field(default_factory=list)  # a step of the visit timed out or threw
    math: dict = dataclasses.field(default_factory=dict)
    raw_tex: list[str] = dataclasses.field(default_factory=list)
    images: list[dict] = dataclasses.field(default_factory=list)
    widgets: dict = dataclasses.field(default_factory=dict)
    sliders: list[dict] = dataclasses.field(default_factory=list)
    answers: list[dict] = dataclasses.field(default_factory=list)
    axe: list[dict] = dataclasses.field(default_factory=list)
    axe_left_out: int = 0  # code and math blocks made of styles axe had already checked, taken out before it ran
    title: str = ""


# --- static HTML ----------------------------------------------------------------------------------

class _Page(html.parser.HTMLParser):
    """The ids, links and sidebar links of one built page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (href, class)
        self.sidebar: list[tuple[str, str]] = []  # (href, text) in the primary sidebar, in order
        self._nav_depth = 0
        self._in_link: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if self._nav_depth:
            self._nav_depth += 1
        elif tag == "nav" and "bd-docs-nav" in (a.get("class") or ""):
            self._nav_depth = 1
        if tag == "a" and a.get("href") is not None:
            self.links.append((a["href"], a.get("class") or ""))
            if self._nav_depth:
                self._in_link = [a["href"], ""]

    def handle_endtag(self, tag):
        if tag == "a" and self._in_link is not None:
            self.sidebar.append((self._in_link[0], " ".join(self._in_link[1].split())))
            self._in_link = None
        if self._nav_depth:
            self._nav_depth -= 1

    def handle_data(self, data):
        if self._in_link is not None:
            self._in_link[1] += data


def parse(path: Path) -> "_Page":
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page



# --- JavaScript run in the page ------------------------------------------------------------------

JS_WIDGETS_RENDERED = """() => Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
  .every(s => { const p = s.previousElementSibling;
                return p && p.classList.contains('widget-subarea') && p.querySelector('.jupyter-widgets, .widget-container, .lm-Widget'); })"""

JS_MATHJAX_DONE = """async () => {
  if (!document.querySelector('.math')) return true;
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return false;
  await MathJax.startup.promise;
  return true; }"""

# The search page fills #search-results after loading; book/_static/search-math.js then typesets each
# snippet and marks it data-math="done".
JS_SEARCH_DONE = """() => {
  const r = document.getElementById('search-results');
  if (!r) return true;
  const s = r.querySelector('.search-summary');
  if (!s || !s.textContent.trim()) return false;
  return Array.from(r.querySelectorAll('p.context')).every(p => p.dataset.math === 'done'); }"""

JS_IMAGES_DONE = "() => Array.from(document.images).every(i => i.complete)"

JS_MATH = """() => {
  const math = Array.from(document.querySelectorAll('.math'));
  return { elements: math.length,
           typeset: document.querySelectorAll('mjx-container').length,
           untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim().slice(0, 80)),
           errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)) }; }"""

# Text of the article outside code, math and scripts, one string per text node.
JS_PROSE = """() => {
  const root = document.querySelector('main') || document.body;
  const skip = 'pre, code, kbd, samp, script, style, textarea, mjx-container, .highlight, .math, .widget-subarea';
  const out = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n.textContent;
    if (t.trim() && !(n.parentElement && n.parentElement.closest(skip))) out.push(t);
  }
  return out; }"""

JS_IMAGES = """() => Array.from(document.images).map(i => ({
  src: i.currentSrc.startsWith('data:') ? i.currentSrc.slice(0, 40) + '…' : i.currentSrc,
  alt: i.getAttribute('alt'), complete: i.complete, width: i.naturalWidth,
  in_widget: !!i.closest('.widget-subarea') }))"""

JS_WIDGETS = """() => {
  const views = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
  return { state: !!document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]'),
           views: views.length,
           rendered: views.filter(s => { const p = s.previousElementSibling;
               return p && p.classList.contains('widget-subarea') && p.querySelector('.jupyter-widgets, .widget-container, .lm-Widget'); }).length,
           elements: document.querySelectorAll('.jupyter-widgets, [class*="widget-"]').length,
           sliders: document.querySelectorAll('.widget-slider .noUi-handle').length }; }"""

# What a widget shows, apart from the slider itself: visible images (src and alt) and visible text.
JS_SLIDER_SIGNATURE = """(i) => {
  const handle = document.querySelectorAll('.widget-slider .noUi-handle')[i];
  const root = handle.closest('.widget-subarea') || document.body;
  const slider = handle.closest('.widget-slider');
  const visible = e => e.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) && !slider.contains(e);
  const imgs = Array.from(root.querySelectorAll('img')).filter(visible).map(e => e.currentSrc + ' ' + e.alt);
  const text = Array.from(root.querySelectorAll('.widget-html-content, .widget-output, pre')).filter(visible).map(e => e.textContent);
  return JSON.stringify([imgs, text]); }"""

JS_SLIDER_STATE = """(i) => {
  const h = document.querySelectorAll('.widget-slider .noUi-handle')[i];
  const s = h.closest('.widget-slider'); const r = s.querySelector('.widget-readout');
  return { now: parseFloat(h.getAttribute('aria-valuenow')), max: parseFloat(h.getAttribute('aria-valuemax')),
           readout: r ? r.textContent.trim() : null, label: h.getAttribute('aria-label'),
           valuetext: h.getAttribute('aria-valuetext') }; }"""

# Practice answers: sphinx-exercise solutions (and any other toggled admonition or dropdown).
JS_ANSWERS = """() => Array.from(document.querySelectorAll('.solution, .admonition.toggle, details.sd-dropdown, details.toggle-details')).map((el, i) => {
  el.setAttribute('data-answer-index', i);
  const content = el.tagName === 'DETAILS'
      ? Array.from(el.children).filter(c => c.tagName !== 'SUMMARY')
      : Array.from(el.children).filter(c => !c.classList.contains('admonition-title'));
  return { index: i, id: el.id || '', solution: el.classList.contains('solution'),
           title: (el.querySelector('.admonition-title, summary') || el).textContent.trim().slice(0, 60),
           text: content.map(c => c.textContent).join(' ').trim().slice(0, 60),
           visible: content.some(c => c.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) }; })"""

JS_ANSWER_VISIBLE = """(i) => { const el = document.querySelector(`[data-answer-index="${i}"]`);
  const content = el.tagName === 'DETAILS'
      ? Array.from(el.children).filter(c => c.tagName !== 'SUMMARY')
      : Array.from(el.children).filter(c => !c.classList.contains('admonition-title'));
  return content.some(c => c.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })); }"""

# axe-core's time grows with the page's elements, whatever part of the page it is asked to check: on chapter
# 7 (27 000 elements, 23 000 of them highlighted code and typeset math) one run took 16 s, 3.6 s with the code
# blocks and math containers gone. Those blocks come from the same two templates (Pygments, MathJax) on every
# page, so each is checked where one of its text styles (colour, background behind it, font size and weight,
# opacity, shadow: all colour contrast depends on) first appears in the browser session; a block made only
# of styles already checked is taken out of the page before axe runs (the visit's other steps are done by
# then). Returns the styles now checked and how many blocks were taken out.
JS_LEAVE_OUT_SEEN_BLOCKS = """(seen) => {
  const known = new Set(seen);
  const behind = (el) => { for (let e = el; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      if (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg; } return 'none'; };
  const looks = (block) => { const out = new Set();
    for (const el of [block, ...block.querySelectorAll('*')]) {
      if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
      const s = getComputedStyle(el);
      out.add([s.color, behind(el), s.fontSize, s.fontWeight, s.opacity, s.textShadow].join('|')); }
    return out; };
  const blocks = [...document.querySelectorAll('pre, mjx-container')]
      .filter(b => !(b.parentElement && b.parentElement.closest('pre, mjx-container')));
  let removed = 0;
  for (const block of blocks) {
    const mine = looks(block);
    if ([...mine].every(l => known.has(l))) { block.remove(); removed += 1; }
    else mine.forEach(l => known.add(l));
  }
  return { seen: [...known], removed }; }"""

JS_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({ target: n.target.join(' '), html: n.html.slice(0, 160) })) })); }"""


class _Failed:
    """What :func:`_step` returns when the step failed (None can be a step's ordinary result)."""

    def __bool__(self):
        return False


FAILED = _Failed()


def _step(report: PageReport, name: str, fn, *args, **kwargs):
    """Run one step of a visit; a timeout or an exception is recorded, and the visit goes on."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a line in the report
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        report.steps_failed.append(f"{name}: {type(exc).__name__}: {first}")
        return FAILED


def settle(page, report: PageReport) -> None:
    """Wait until MathJax has typeset, the saved widgets are rendered and every image has loaded."""
    page.wait_for_load_state("load")
    if not _step(report, "MathJax", page.evaluate, JS_MATHJAX_DONE):
        report.steps_failed.append("MathJax: the page has math but MathJax never started")
    if page.query_selector('script[type="application/vnd.jupyter.widget-view+json"]'):
        _step(report, "widgets render", page.wait_for_function, JS_WIDGETS_RENDERED, timeout=15_000)
    _step(report, "search results", page.wait_for_function, JS_SEARCH_DONE, timeout=TIMEOUT_MS)
    _step(report, "images load", page.wait_for_function, JS_IMAGES_DONE, timeout=TIMEOUT_MS)


def raw_tex(snippets: list[str]) -> list[str]:
    found = []
    for text in snippets:
        for pattern in RAW_TEX:
            m = pattern.search(text)
            if m:
                a = max(0, m.start() - 40)
                found.append(text[a:m.end() + 40].strip())
                break
    return found


def visit(context, base: str, page_path: str, network: Network, *, axe: bool = True,
          interact: bool = True, axe_seen: set[str] | None = None) -> PageReport:
    """Load ``page_path`` in a new tab and report what a reader would meet (see the module docstring).

    ``axe_seen``: the text styles of code and math blocks axe already checked on earlier pages of this
    browser session (see JS_LEAVE_OUT_SEEN_BLOCKS); updated in place. None: this page alone."""
    report = PageReport(page_path)
    page = context.new_page()
    aborted_before = len(network.external)

    def on_console(msg):
        if msg.type == "error":
            loc = msg.location or {}
            report.console_errors.append(f"{msg.text[:300]} ({loc.get('url', '')}:{loc.get('lineNumber', '')})")

    def on_failed(request):
        if request.url.startswith(base):
            report.failed_requests.append(f"{request.url}: {request.failure}")

    def on_response(response):
        if response.status >= 400:
            report.failed_requests.append(f"{response.url}: HTTP {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: report.console_errors.append(f"uncaught: {exc}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    try:
        if _step(report, "load", page.goto, base + page_path, wait_until="load") is FAILED:
            return report
        settle(page, report)
        report.title = page.title()
        report.math = _step(report, "math", page.evaluate, JS_MATH) or {}
        report.raw_tex = raw_tex(_step(report, "text", page.evaluate, JS_PROSE) or [])
        report.images = _step(report, "images", page.evaluate, JS_IMAGES) or []
        report.widgets = _step(report, "widgets", page.evaluate, JS_WIDGETS) or {}
        if interact:
            report.sliders = [_move_slider(page, report, i) for i in range(report.widgets.get("sliders", 0))]
            report.answers = _check_answers(page, report)
        if axe:  # last: it may take repeated code and math blocks out of the page (JS_LEAVE_OUT_SEEN_BLOCKS)
            if not AXE.is_file():
                report.steps_failed.append(f"axe-core: {AXE.relative_to(ROOT)} is missing: run `make test` "
                                           "(its `npm ci` installs axe-core from package-lock.json)")
            elif _step(report, "axe-core inject", page.add_script_tag, path=str(AXE)) is not FAILED:
                seen = axe_seen if axe_seen is not None else set()
                lean = _step(report, "leave out checked blocks", page.evaluate, JS_LEAVE_OUT_SEEN_BLOCKS, sorted(seen))
                if lean:
                    seen.update(lean["seen"])
                    report.axe_left_out = lean["removed"]
                report.axe = _step(report, "axe-core run", page.evaluate, JS_AXE) or []
    finally:
        page.wait_for_timeout(100)  # let late console messages and requests arrive
        report.external_requests = network.external[aborted_before:]
        page.close()
    return report


def _move_slider(page, report: PageReport, i: int) -> dict:
    """Press an arrow key on slider ``i``'s handle; report whether what the widget shows changed."""
    before = page.evaluate(JS_SLIDER_STATE, i)
    signature = page.evaluate(JS_SLIDER_SIGNATURE, i)
    key = "ArrowLeft" if before["now"] >= before["max"] else "ArrowRight"
    handle = page.locator(".widget-slider .noUi-handle").nth(i)
    result = {"index": i, "key": key, "before": before, "changed": False}
    if _step(report, f"slider {i} key", handle.press, key) is FAILED:
        return result
    try:  # not a failed step: test_moving_a_slider_changes_what_is_shown reports it
        page.wait_for_function(f"(old) => ({JS_SLIDER_SIGNATURE})({i}) !== old", arg=signature, timeout=5_000)
        result["changed"] = True
    except Exception:  # noqa: BLE001 - a timeout: nothing changed
        result["changed"] = False
    result["after"] = page.evaluate(JS_SLIDER_STATE, i)
    return result


def _check_answers(page, report: PageReport) -> list[dict]:
    """For each toggled answer: hidden at first? visible after its toggle is clicked?"""
    answers = _step(report, "answers", page.evaluate, JS_ANSWERS) or []
    for a in answers:
        el = page.locator(f'[data-answer-index="{a["index"]}"]')
        toggle = el.locator(".toggle-button, summary").first
        a["has_toggle"] = toggle.count() > 0
        if not a["has_toggle"]:
            a["visible_after_click"] = a["visible"]
            continue
        _step(report, f"click answer {a['index']}", toggle.click)
        ok = _step(report, f"answer {a['index']} shows", page.wait_for_function,
                   f"() => ({JS_ANSWER_VISIBLE})({a['index']})", timeout=5_000)
        a["visible_after_click"] = ok is not FAILED
    return answers


def alt_problem(alt: str | None) -> str | None:
    """Why ``alt`` does not say what an image shows, or None when it plausibly does."""
    if alt is None or not alt.strip():
        return "no alt text"
    text = alt.strip()
    if text.lower().strip(".") in GENERIC_ALT:
        return f"generic alt text {text!r}"
    if re.search(r"\.(png|jpe?g|svg|gif|webp)$", text, re.I) or "_images/" in text or text.startswith("data:"):
        return f"alt text is a file name {text[:60]!r}"
    if re.match(r"^<.*>$", text):
        return f"alt text is a Python repr {text[:60]!r} (myst-nb's text/plain output)"
    if len(text.split()) < 3:
        return f"alt text {text!r} is too short to say what the image shows"
    return None


# --- `make screenshots` ----------------------------------------------------------------------------

def screenshots(out: Path, html: Path = HTML) -> list[Path]:
    """A PNG of each toc page's first screen and of each widget (slider moved once, too), into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with serve(html) as base, open_browser(base) as (context, network):
        for page_path in toc_pages():
            stem = Path(page_path).stem
            page = context.new_page()
            page.goto(base + page_path, wait_until="load")
            report = PageReport(page_path)
            settle(page, report)
            page.wait_for_timeout(300)
            written.append(out / f"{stem}.png")
            page.screenshot(path=written[-1])
            for k, widget in enumerate(page.locator(".widget-subarea").all(), start=1):
                widget.scroll_into_view_if_needed()
                written.append(out / f"{stem}-widget{k}.png")
                widget.screenshot(path=written[-1])
            for line in report.steps_failed:
                print(f"{page_path}: {line}", file=sys.stderr)
            page.close()
        if network.external:
            print(f"blocked requests to other sites: {sorted(set(network.external))}", file=sys.stderr)
    return written


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] != "screenshots":
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    if not (HTML / "index.html").is_file():
        print("no built book in _build/html: run `make book` first", file=sys.stderr)
        return 2
    if find_chromium() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "_build" / "screenshots"
    for path in screenshots(out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
