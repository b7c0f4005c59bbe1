"""Labelled structures (layer 2): the canonical label table, frames, extxyz I/O through
data specs, validation, splits, batches and the trajectory frame schema.

Importing the package is light (the label table needs nothing but the units); ``Frame``
(which needs ASE) is imported when first used.
"""

from fieldforce.data.labels import LABELS, LabelSpec

__all__ = ["Frame", "LABELS", "LabelSpec"]


def __getattr__(name: str):
    if name == "Frame":
        from fieldforce.data.frame import Frame

        return Frame
    raise AttributeError(f"module 'fieldforce.data' has no attribute {name!r}")
