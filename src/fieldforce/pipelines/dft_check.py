"""The DFT part of ``fieldforce demo --dft-check``: label one molecule, check the physics.

Summarizes the shipped water dataset, labels one water molecule in a uniform field
with the dataset's own DFT settings, and checks what came out against physics on
the spot (acoustic sum rule, the second-order field expansion of the energy, the
shipped label of the same molecule).
"""

from __future__ import annotations

import time

import numpy as np

from fieldforce import units


def _fmt_vec(v) -> str:
    return "[" + ", ".join(f"{x:+.4f}" for x in np.ravel(v)) + "]"


def dft_check(efield=(0.0, 0.0, 0.05), basis: str | None = None) -> int:
    """Run the check (prints as it goes); 0 when every check passes. ``efield`` V/Å,
    ``basis``: override the dataset's basis (faster, less accurate)."""
    from fieldforce.data.info import format_summary, summarize
    from fieldforce.datasets import load_water, water_metadata, water_path
    from fieldforce.reference.backend import get_backend

    print("== 1. The shipped water dataset ==")
    print(f"file: {water_path()}")
    frames = load_water()
    print(format_summary(summarize(frames, source=str(water_path()))))
    meta = water_metadata()
    lot = meta["level_of_theory"]
    print(f"level of theory: {lot['xc']}/{lot['basis']} ({lot['code']})")
    if "labelling_cost" in meta:
        print("labelling cost per structure (s):", meta["labelling_cost"])

    print("\n== 2. Labelling one water molecule under a field ==")
    monomer = next(
        f
        for f in frames
        if f.atoms.info.get("config_type") == "monomer" and not abs(f.efield).max() > 0
    )
    settings = {"xc": lot["xc"], "basis": basis or lot["basis"]}
    backend = get_backend("pyscf", **settings)
    efield = np.asarray(efield, dtype=float)
    props = {"energy", "forces", "dipole", "polarizability", "born_charges"}
    t0 = time.perf_counter()
    at_field = backend.label(monomer.atoms, efield, props)
    at_zero = backend.label(monomer.atoms, np.zeros(3), {"energy", "dipole"})
    elapsed = time.perf_counter() - t0
    print(
        f"{settings['xc']}/{settings['basis']}, E = {_fmt_vec(efield)} V/Å "
        f"({np.linalg.norm(efield) / units.MV_PER_CM:.1f} MV/cm); {elapsed:.1f} s on this machine"
    )
    mu = at_field["dipole"]
    print(f"energy           {float(at_field['energy']):.6f} eV")
    print(f"dipole           {_fmt_vec(mu)} e·Å  (|mu| = {np.linalg.norm(mu) / units.DEBYE:.3f} D)")
    alpha = at_field["polarizability"]
    iso = np.trace(alpha) / 3
    print(
        f"polarizability   isotropic {iso:.5f} e·Å²/V = "
        f"{iso * units.COULOMB_CONSTANT:.3f} Å³ (experiment, gas phase: 1.45 Å³)"
    )
    print("forces (eV/Å)")
    for sym, f in zip(monomer.atoms.get_chemical_symbols(), at_field["forces"], strict=True):
        print(f"  {sym:2s} {_fmt_vec(f)}")
    print("Born effective charges: diagonal of Z* (e)")
    zstar = at_field["born_charges"]
    for sym, z in zip(monomer.atoms.get_chemical_symbols(), zstar, strict=True):
        print(f"  {sym:2s} {_fmt_vec(np.diag(z))}")

    print("\n== 3. Checks against physics ==")
    asr = np.abs(zstar.sum(axis=0)).max()
    print(f"acoustic sum rule  max|sum_i Z*_i| = {asr:.2e} e  (exact: 0 for a neutral molecule)")
    predicted = (
        float(at_zero["energy"]) - at_zero["dipole"] @ efield - 0.5 * efield @ alpha @ efield
    )
    # The field derivatives are taken at E, not 0: alpha(E) differs from alpha(0)
    # at third order, so the residual is O(E^3).
    residual = float(at_field["energy"]) - predicted
    field_energy = predicted - float(at_zero["energy"])
    print(
        f"second-order expansion: field energy {field_energy * 1e3:+.4f} meV; "
        f"U(E) - [U0 - mu0·E - 1/2 E·alpha·E] = {residual * 1e6:+.3f} µeV "
        f"({abs(residual / field_energy):.1e} of it, third order in E)"
    )
    if settings["basis"] == lot["basis"] and "dipole" in monomer.labels:
        d = np.abs(at_zero["dipole"] - monomer.labels["dipole"]).max()
        print(f"zero-field dipole vs the shipped label of the same frame: max diff {d:.1e} e·Å")
    return 0
