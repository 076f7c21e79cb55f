"""Helpers shared by the chapters (figures, data, training loops)."""
