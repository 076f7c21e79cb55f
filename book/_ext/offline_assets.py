"""A Sphinx check that the book's browser assets are local, with a clear message when they are not.

The ipywidgets HTML manager (``embed.js``) is not committed: ``make book`` copies it from
``node_modules`` into ``book/_static/vendor``. Without it the build would still succeed, and the
widgets would silently not render. This extension turns that into a warning (an error under ``-W``)
that says what to run, and also warns if ``nb_ipywidgets_js`` names a URL on the internet.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def check_widget_assets(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    static_dirs = [Path(app.confdir, d) for d in app.config.html_static_path]
    for script in getattr(app.config, "nb_ipywidgets_js", {}) or {}:
        if "://" in script or script.startswith("//"):
            logger.warning(f"nb_ipywidgets_js loads {script} from the internet; the book must work offline")
        elif not any((d / script).is_file() for d in static_dirs):
            logger.warning(
                f"{script} is in none of the html_static_path folders: build the book with `make book`, "
                "which copies the ipywidgets HTML manager into book/_static/vendor from node_modules"
            )


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", check_widget_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
