"""Accessibility fixes for the theme and the extensions' HTML, so the pages pass axe-core.

``tests/test_browser.py`` runs axe-core on every page and fails on any serious or critical violation.
These are the ones the stock stack (pydata/sphinx-book-theme, docutils, myst-nb) produces, and the
fix for each:

- ``label-content-name-mismatch`` (serious): the search button's ``aria-label`` ("Search") hides its
  visible text ("Search Ctrl+K"), and the colour-mode button's icons carry titles ("Light", "Dark")
  that are not in its label. ``templates/`` overrides the two theme components: the search button
  is named by its visible text; the icons are ``aria-hidden`` and the button keeps "Color mode".
  A code cell's "Show code cell source" toggle (myst-nb) has ``aria-label="Toggle hidden content"``
  over visible text; the label is dropped so the visible text names it.
- ``aria-required-children`` (critical): docutils wraps citations in ``role="list"`` but gives each
  entry the deprecated ``role="doc-biblioentry"``, which is not a list item. Each entry becomes
  ``role="listitem"``.
- ``aria-input-field-name`` (serious): the ipywidgets slider handle (noUiSlider) has no accessible
  name. ``book/_static/book-a11y.js`` names it after the slider's label and reads out the label of
  the current value instead of its index. Widget images get alt text in ``dropout_lib/widgets.py``.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx

TEMPLATES = Path(__file__).parent / "templates"

# (what the stock HTML says, what it should say)
BODY_FIXES = (
    ('role="doc-biblioentry"', 'role="listitem"'),
    ('<summary aria-label="Toggle hidden content">', "<summary>"),
)


def use_templates(app: Sphinx, config) -> None:
    # First in the search path, ahead of the theme's own components.
    if str(TEMPLATES) not in config.templates_path:
        config.templates_path.insert(0, str(TEMPLATES))


def fix_body(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    body = context.get("body")
    if isinstance(body, str):
        for old, new in BODY_FIXES:
            body = body.replace(old, new)
        context["body"] = body


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", use_templates)
    app.connect("html-page-context", fix_body)
    # In book/_static (html_static_path); tiny, so on every page.
    app.add_js_file("book-a11y.js", defer="defer")
    # Link colours inside exercise boxes (axe-core's color-contrast rule).
    app.add_css_file("book-a11y.css")
    # Typesets the math in search-result snippets, which Sphinx adds after MathJax has run. The search
    # page has no math of its own, so MathJax (served locally) is loaded on every page, not only on
    # pages with equations.
    app.add_js_file("search-math.js", defer="defer")
    app.set_html_assets_policy("always")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
