"""Datasets shipped with fieldforce, labelled by fieldforce's own DFT labeller.

``water``: H2O monomers, dimers and trimers from thermal sampling, labelled with
PySCF (settings in ``water_meta.json``) with energy, forces, dipole,
polarizability and Born effective charges, at zero field and, for a subset, at
finite uniform fields up to 0.1 V/Å. Regenerate with
``python -m fieldforce.datasets.make_water`` (see ``water_meta.json`` for the
exact command and the measured labelling cost).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from fieldforce.data.frame import Frame

__all__ = ["water_path", "water_metadata", "load_water"]


def water_path() -> Path:
    """Path of the shipped canonical extxyz file (gzip-compressed)."""
    return Path(str(resources.files(__package__).joinpath("water.xyz.gz")))


def water_metadata() -> dict:
    """How the shipped water data were made: level of theory, counts, cost, command."""
    text = resources.files(__package__).joinpath("water_meta.json").read_text()
    return json.loads(text)


def load_water(config_type: str | None = None, field: bool | None = None) -> list[Frame]:
    """The shipped water frames, optionally filtered.

    Parameters
    ----------
    config_type
        ``"monomer"``, ``"dimer"`` or ``"trimer"``; ``None`` for all.
    field
        ``True``: only frames labelled at a non-zero uniform field;
        ``False``: only zero-field frames; ``None``: both.
    """
    from fieldforce.data.io import read_frames

    frames = read_frames(water_path())
    if config_type is not None:
        frames = [f for f in frames if f.atoms.info.get("config_type") == config_type]
    if field is not None:
        frames = [f for f in frames if bool(abs(f.efield).max() > 0) == field]
    return frames
