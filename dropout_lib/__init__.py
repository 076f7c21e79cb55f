"""Helpers shared by the chapters of the Dropout course book.

- :mod:`dropout_lib.plots`: the book's figure style, colour maps and PNG rendering.
- :mod:`dropout_lib.widgets`: sliders over precomputed frames that work in static HTML.
- :mod:`dropout_lib.data`: small bundled data sets with a fixed test split.
- :mod:`dropout_lib.experiments`: training loops and confidence intervals for experiments.

A chapter introduces a piece of code where it teaches something. When a later chapter needs it
again, it moves here instead of being pasted twice.
"""
