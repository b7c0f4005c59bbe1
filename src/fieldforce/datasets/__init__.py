"""Datasets shipped with fieldforce, labelled by fieldforce's own DFT labeller.

``water``: H2O monomers, dimers and trimers from thermal sampling, labelled with
PySCF (settings in ``water_meta.json``) with energy, forces, dipole,
polarizability and Born effective charges, at zero field and, for a subset, at
finite uniform fields up to 0.1 V/Å. Regenerate with
``python -m fieldforce.datasets.make_water`` (see ``water_meta.json`` for the
exact command and the measured labelling cost).

``metal``: Cu(100), Cu(111) and W(110) slabs with an adatom at its stable and saddle
sites and along its hop, thermal displacements and clean slabs, labelled with GPAW
(settings in ``metal_meta.json``) with energy, forces, and the dipole and
polarizability along the surface normal, at fields between -1 and +1 V/Å.
Regenerate with ``python -m fieldforce.datasets.make_metal``.

``charge_transfer``: molecules and clusters where non-local charge transfer decides the
answer (polyyne C10H2 and its protonated cation C10H3+, Na4Cl4 and its ions, Na_n
clusters, Na8 + H2O), labelled with PySCF (settings in ``charge_transfer_meta.json``)
with energy, forces, dipole, polarizability, Born charges and meta-Löwdin charges, in
several charge states (``total_charge``) and, for a third of the frames, in a uniform
field. Regenerate with ``python -m fieldforce.datasets.make_charge_transfer``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from fieldforce.data.frame import Frame

__all__ = ["water_path", "water_metadata", "load_water", "metal_path", "metal_metadata",
           "load_metal", "charge_transfer_path", "charge_transfer_metadata",
           "load_charge_transfer", "SHIPPED", "load_shipped"]


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


def metal_path() -> Path:
    """Path of the shipped metal-surface extxyz file (gzip-compressed)."""
    return Path(str(resources.files(__package__).joinpath("metal.xyz.gz")))


def metal_metadata() -> dict:
    """How the shipped metal data were made: level of theory, counts, checks, commands."""
    return json.loads(resources.files(__package__).joinpath("metal_meta.json").read_text())


def load_metal(system: str | None = None, config_type: str | None = None) -> list[Frame]:
    """The shipped metal-surface frames, optionally filtered.

    Parameters
    ----------
    system
        ``"Cu(100)"``, ``"Cu(111)"`` or ``"W(110)"``; ``None`` for all.
    config_type
        ``"adatom_path"`` (adatom at sites and along its hop, frame info ``image``),
        ``"adatom_thermal"``, ``"clean_thermal"``, ``"clean_thick"`` or ``"model_neb"``
        (a model's own NEB minimum and saddle, labelled to check it; info ``state``,
        ``neb_model``); ``None`` for all.

    Every frame has energy, forces, efield (along the normal: the field the surface
    felt), dipole and polarizability (normal components; in-plane ones are zero and
    not labels) and info ``system``, ``config_type``, ``target_field`` (V/Å); the
    ``model_neb`` frames have no polarizability (and so no Gauss check): the training
    losses skip a label a frame lacks.
    """
    from fieldforce.data.io import read_frames
    from fieldforce.data.splits import select_frames

    wanted = {k: v for k, v in (("system", system), ("config_type", config_type)) if v}
    return select_frames(read_frames(metal_path()), wanted, "fieldforce:metal", "load_metal")


def charge_transfer_path() -> Path:
    """Path of the shipped charge-transfer extxyz file (gzip-compressed)."""
    return Path(str(resources.files(__package__).joinpath("charge_transfer.xyz.gz")))


def charge_transfer_metadata() -> dict:
    """How the shipped charge-transfer data were made: level of theory, counts, commands."""
    text = resources.files(__package__).joinpath("charge_transfer_meta.json").read_text()
    return json.loads(text)


def load_charge_transfer(config_type: str | None = None) -> list[Frame]:
    """The shipped charge-transfer frames, optionally of one kind.

    Parameters
    ----------
    config_type
        ``"chain"``, ``"chain_protonated"``, ``"nacl"``, ``"nacl_cation"``,
        ``"nacl_anion"``, ``"sodium"`` or ``"sodium_water"``; ``None`` for all.

    Every frame has energy, forces, dipole, polarizability, Born charges, charges
    (meta-Löwdin), ``total_charge`` (e) and ``efield`` (zero or a uniform field of
    0.01-0.05 V/Å).
    """
    from fieldforce.data.io import read_frames
    from fieldforce.data.splits import select_frames

    return select_frames(read_frames(charge_transfer_path()),
                         {"config_type": config_type} if config_type else None,
                         "fieldforce:charge_transfer", "load_charge_transfer")


#: the shipped datasets by name (``fieldforce:NAME`` in training configs)
SHIPPED = {"water": load_water, "metal": load_metal, "charge_transfer": load_charge_transfer}


def load_shipped(name: str) -> list[Frame]:
    """Every frame of the shipped dataset ``name`` (a key of :data:`SHIPPED`)."""
    from fieldforce.errors import ConfigError

    if name not in SHIPPED:
        raise ConfigError(f"unknown shipped dataset {name!r}; available: "
                          f"{', '.join('fieldforce:' + k for k in SHIPPED)}")
    return SHIPPED[name]()
