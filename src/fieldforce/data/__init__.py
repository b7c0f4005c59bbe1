"""Labelled structures: canonical labels, extxyz I/O through data specs, validation, splits."""

from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS, LabelSpec

__all__ = ["Frame", "LABELS", "LabelSpec"]
