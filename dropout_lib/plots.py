"""One figure style for every chapter.

Call :func:`use_book_style` once at the top of a chapter. The choices, and why:

- Masks are drawn with :data:`MASK_CMAP` (``"gray"``): a kept unit (1) is white and a dropped unit
  (0) is black, which reads the same in colour, in greyscale print and for colour-blind readers.
- Continuous quantities use :data:`SEQUENTIAL_CMAP` (``"cividis"``), designed to be perceptually
  uniform and readable with the common forms of colour blindness.
- Lines and markers cycle through :data:`COLORS`, the Okabe-Ito palette, and chapters also vary
  line style or marker so that no plot relies on colour alone.

:func:`figure_to_png` renders a figure to PNG bytes, which is what an ``ipywidgets.Image`` frame
holds (see :mod:`dropout_lib.widgets`).
"""

from __future__ import annotations

import io
from typing import Sequence

import matplotlib

MASK_CMAP = "gray"
SEQUENTIAL_CMAP = "cividis"

# Okabe & Ito (2008), "Color Universal Design": black, orange, sky blue, bluish green, vermillion,
# blue, reddish purple, yellow.
COLORS = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442")

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.figsize": (6.4, 3.6),
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "image.cmap": SEQUENTIAL_CMAP,
    "image.interpolation": "nearest",
    "axes.prop_cycle": matplotlib.cycler(color=list(COLORS)),
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings (:data:`STYLE`) to every later figure in this process."""
    matplotlib.rcParams.update(STYLE)


def show_mask(ax, mask, title: str | None = None) -> None:
    """Draw a 2-D 0/1 mask on ``ax``: kept (1) white, dropped (0) black, a thin frame, no ticks.

    ``mask`` may be a torch tensor or a NumPy array.
    """
    values = mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask
    ax.imshow(values, cmap=MASK_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.8)
    if title is not None:
        ax.set_title(title)


def mask_grid(masks: Sequence, titles: Sequence[str], size: float = 1.8):
    """A one-row figure of masks side by side, each drawn with :func:`show_mask`; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(masks), figsize=(size * len(masks), size + 0.4), squeeze=False)
    for ax, mask, title in zip(axes[0], masks, titles):
        show_mask(ax, mask, title)
    fig.tight_layout()
    return fig


def figure_to_png(fig, dpi: int | None = None) -> bytes:
    """Render ``fig`` to PNG bytes and close it (so it is not also shown as a notebook output)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or matplotlib.rcParams["savefig.dpi"], bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
