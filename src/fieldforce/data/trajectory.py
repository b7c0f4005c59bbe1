"""The trajectory frame schema: which keys an MD frame carries and where ASE puts them.

``fieldforce md`` writes one extxyz frame every ``write_interval`` steps; this module is
the one place that knows its layout, used by the writer
(:mod:`fieldforce.simulation.observers`), the analysis (:mod:`fieldforce.analysis`) and
the demo.

=================  ========  ==============  ==============================================
key                where     shape           meaning
=================  ========  ==============  ==============================================
step               info      ()              MD step
time_fs            info      ()              simulation time, fs
efield             info      (3,)            the applied field, V/Å (uniform fields)
atom_efield        arrays    (N, 3)          the field at each atom, V/Å (non-uniform)
momenta            arrays    (N, 3)          ASE momenta (velocities = momenta / masses)
<outputs>          info /    the output's    every ``property`` output the model declares
                   arrays    shape           (energy, forces, dipole, polarizability,
                                             charges, born_charges, polarization, an
                                             uncertainty, ...): per-structure ones in info,
                                             per-atom ones in arrays; tensors row-major
                                             (a 3x3 per atom is 9 columns)
=================  ========  ==============  ==============================================

A periodic model with charges records ``polarization`` on the continuous branch followed
along the run and ``dipole`` = V P on that branch (not the calculator's default branch).

ASE's extxyz reader moves the keys it knows (energy, forces, dipole, charges, stress,
polarization, ...) from ``info``/``arrays`` into a ``SinglePointCalculator``;
:func:`frame_value` looks in all three places, so readers need not care.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

#: keys that describe the step rather than the model's outputs
STEP_INFO = ("step", "time_fs", "efield")
STEP_ARRAYS = ("atom_efield", "momenta")

#: why a key may be missing from a frame: how ``fieldforce md`` writes it
HINTS = {
    "polarization": "written by fieldforce md for periodic latent-charge models",
    "born_charges": "written by fieldforce md with write_born_charges: true",
    "efield": "the uniform field, written by fieldforce md",
    "time_fs": "written by fieldforce md",
    "step": "written by fieldforce md",
    "momenta": "written by fieldforce md",
    "dipole": "written by fieldforce md for models with a dipole",
}


def frame_value(atoms, key: str) -> Any:
    """The value of ``key`` in a frame as written (info, arrays, or the results ASE's
    reader moved to a calculator); None when the frame does not have it."""
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(key)


def make_frame(atoms, step: int, time_fs: float, values: dict[str, np.ndarray],
               per_atom: Iterable[str]):
    """A copy of ``atoms`` (positions, momenta, cell) carrying ``values`` as plain extxyz
    keys and no calculator; ``per_atom`` names the values that go to ``arrays``.

    The input's own tags (e.g. its DFT label metadata) are dropped: they do not describe
    this frame. Per-atom tensors are stored row-major, one row per atom.
    """
    frame = atoms.copy()
    frame.calc = None
    frame.info = {"step": int(step), "time_fs": float(time_fs)}
    per_atom = set(per_atom)
    for key, value in values.items():
        value = np.asarray(value, dtype=float)
        if key in per_atom:
            frame.arrays[key] = value.reshape(len(atoms), -1).copy() if value.ndim > 2 else (
                value.copy())
        else:
            frame.info[key] = float(value) if value.ndim == 0 else value.ravel().copy()
    return frame


def strip_frame(atoms, keys: Iterable[str] = ()) -> None:
    """Remove what a frame recorded (step keys, ``keys``), keeping positions, momenta and
    cell: the state a resumed run starts from."""
    for key in (*STEP_INFO, *keys):
        atoms.info.pop(key, None)
    for key in ("atom_efield", *keys):
        if key != "momenta":
            atoms.arrays.pop(key, None)


__all__ = ["HINTS", "STEP_ARRAYS", "STEP_INFO", "frame_value", "make_frame", "strip_frame"]
