"""Widgets that keep working in the static HTML book, without a running kernel.

A Python callback (``interact``, ``observe``) needs a kernel, which a built book does not have. So the
chapters precompute every frame as a PNG and let the browser switch between them:
:func:`frame_slider` puts the frames in a ``widgets.Stack`` and links a slider's ``index`` to the
stack's ``selected_index`` with ``widgets.jslink``, a link that lives in the page's JavaScript.
myst-nb saves the widgets' state (frames included) into the page, and the ipywidgets HTML manager
(served from ``_static/vendor/html-manager``) renders it.

Each frame is an ``HTML`` widget holding an ``<img>`` with a data URL and **alt text**, not an
``Image`` widget: ipywidgets' ``Image`` has no ``alt`` attribute, so a screen reader would announce
an unlabelled image (axe-core's critical ``image-alt`` violation). Pass ``alt`` to say what each frame
shows. The slider handle gets its accessible name (the ``description``) and a readable value (the
label, not the frame's index) from ``book/_static/book-a11y.js``, since noUiSlider's handle has none.

Keep frames few and small: every frame is embedded in the page as base64 PNG. Avoid widget
``description``s, ``Label`` and ``HTMLMath`` widgets in the book: ipywidgets 8 typesets them with
MathJax 2's ``MathJax.Hub``, which does not exist under the book's MathJax 3 (a console error).
"""

from __future__ import annotations

import base64
import html
from typing import Sequence

import ipywidgets as widgets


def frame_html(png: bytes, alt: str, width: str | None = None) -> str:
    """An ``<img>`` tag showing ``png`` (inline, as a data URL) with ``alt`` as its text alternative."""
    if not alt or not alt.strip():
        raise ValueError("every frame needs alt text saying what it shows")
    style = "display:block;max-width:100%;height:auto" + (f";width:{width}" if width else "")
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt.strip(), quote=True)}" style="{style}">'


def frame_slider(
    frames: Sequence[bytes],
    labels: Sequence[str],
    description: str = "",
    index: int = 0,
    width: str | None = None,
    alt: str | Sequence[str] | None = None,
) -> widgets.VBox:
    """A slider above a stack of PNG frames; moving the slider shows frame ``i`` for label ``i``.

    Parameters
    ----------
    frames:
        PNG bytes, one per slider position (for example from :func:`dropout_lib.plots.figure_to_png`).
    labels:
        The slider's readout for each frame, e.g. ``"0.30"``.
    description:
        Text left of the slider, e.g. ``"p"``; also the slider's accessible name.
    index:
        The frame shown first.
    width:
        CSS width of each image (e.g. ``"420px"``); the PNG's own size when None.
    alt:
        What each frame shows, for readers who cannot see it: one string per frame, or one string
        formatted with ``{label}`` and ``{description}``, e.g.
        ``"A 20 by 20 mask at p = {label}: white squares kept, black dropped"``. When None, a short
        description naming the slider's value is used; chapters should say what the picture shows.
    """
    if len(frames) != len(labels) or not frames:
        raise ValueError(f"need one label per frame and at least one frame; got {len(frames)} frames, {len(labels)} labels")
    if not 0 <= index < len(frames):
        raise ValueError(f"index {index} is outside the {len(frames)} frames")
    if alt is None:
        name = f"{description} = " if description else "value "
        alts = [f"Figure at {name}{label} (frame {i + 1} of {len(frames)})" for i, label in enumerate(labels)]
    elif isinstance(alt, str):
        alts = [alt.format(label=label, description=description) for label in labels]
    else:
        alts = list(alt)
        if len(alts) != len(frames):
            raise ValueError(f"need one alt text per frame; got {len(alts)} for {len(frames)} frames")
    images = [
        widgets.HTML(value=frame_html(png, text, width), layout=widgets.Layout(width="auto", height="auto"))
        for png, text in zip(frames, alts)
    ]
    stack = widgets.Stack(images, selected_index=index)
    slider = widgets.SelectionSlider(
        options=[(str(label), i) for i, label in enumerate(labels)],
        index=index,
        continuous_update=True,
        layout=widgets.Layout(width="360px"),
    )
    # A browser-side link: works in the built HTML where no kernel is running.
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    # The label is an HTML widget, not the slider's `description`: ipywidgets 8 typesets descriptions
    # and Label widgets with MathJax 2's API (MathJax.Hub), which throws under the book's MathJax 3.
    label = widgets.HTML(value=f"<b>{html.escape(description)}</b>", layout=widgets.Layout(width="auto", margin="0 8px 0 0"))
    row = widgets.HBox([label, slider], layout=widgets.Layout(align_items="center"))
    return widgets.VBox([row, stack]) if description else widgets.VBox([slider, stack])
