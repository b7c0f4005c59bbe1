"""The shipped metal-surface dataset: complete, and its DFT labels obey the relations of a
slab in a field (the electric enthalpy's field derivatives, Gauss's law, no net force)."""

import numpy as np
import pytest

from fieldforce.datasets import load_metal, metal_metadata
from fieldforce.errors import ConfigError


@pytest.fixture(scope="module")
def frames():
    return load_metal()


def test_counts_labels_and_filters(frames):
    meta = metal_metadata()
    assert len(frames) == meta["frames"] == sum(meta["counts"].values())
    # the sampled plan, partly labelled, and the --extra frames beside it
    assert meta["frames_of_the_plan"] <= meta["planned_frames"]
    extra = [f for f in frames if f.atoms.info["config_type"] == "model_neb"
             or f.atoms.info.get("relaxed") or f.atoms.info.get("around_relaxed")]
    assert meta["frames_of_the_plan"] + len(extra) == meta["frames"]
    for f in frames:
        assert all(f.has(p) for p in ("energy", "forces", "dipole")), f.where()
        # only a model's NEB states, labelled to check that model, lack the polarizability
        assert f.has("polarizability") != (f.atoms.info["config_type"] == "model_neb")
        assert f.atoms.pbc.tolist() == [True, True, False]
        # along the normal only: a periodic density has no in-plane dipole
        assert np.abs(f.efield[:2]).max() == 0 and np.abs(f.labels["dipole"][:2]).max() == 0
        if f.has("polarizability"):
            alpha = f.labels["polarizability"]
            assert alpha[2, 2] > 0 and np.abs(alpha).sum() == pytest.approx(alpha[2, 2])
        fixed = f.atoms.constraints[0].index  # the bottom layer is held
        z = f.atoms.positions[:, 2]
        assert z[fixed].max() < np.delete(z, fixed).min()
    for system in {f.atoms.info["system"] for f in frames}:
        subset = load_metal(system)
        assert subset and all(f.atoms.info["system"] == system for f in subset)
    with pytest.raises(ConfigError, match="no frame has system = 'Cu\\(110\\)'; present: "
                       "Cu\\(100\\), Cu\\(111\\), W\\(110\\)"):
        load_metal("Cu(110)")
    paths = load_metal("W(110)", "adatom_path")
    assert paths and all(f.atoms.info["config_type"] == "adatom_path" for f in paths)
    assert len(paths) < len(load_metal("W(110)"))
    with pytest.raises(ConfigError, match="config_type = 'adatom_paths'"):  # no silent []
        load_metal(config_type="adatom_paths")


def test_checks_every_frame_passed(frames):
    for f in frames:
        # Gauss's law is checked from the polarizability's two field runs
        assert f.has("polarizability") == ("gauss_ratio" in f.atoms.info), f.where()
        if "gauss_ratio" in f.atoms.info:
            assert abs(f.atoms.info["gauss_ratio"] - 1) < 0.05, f.where()
        assert np.linalg.norm(f.labels["forces"].sum(axis=0)) < 0.2, f.where()
        # the field felt is near the one asked for
        assert abs(f.efield[2] - f.atoms.info["target_field"]) < 0.15, f.where()


def test_energy_dipole_and_polarizability_are_one_enthalpy(frames):
    """For one geometry at two fields: U2 - U1 = -1/2 (mu1 + mu2)(F2 - F1) and
    mu2 - mu1 = 1/2 (alpha1 + alpha2)(F2 - F1), exact for U quadratic in F: the labels
    are the electric enthalpy of the slab in the field it felt, not the box's energy.

    The energy relation is held to a fraction of the size of its terms, 1/2 (|mu1| +
    |mu2|) |F2 - F1|, not of their sum: between a negative field and zero the dipole
    changes sign and the sum nearly cancels, whereas the raw box energy read against the
    felt field misses by the field enhancement (~70 %). The fraction: 1 % for free
    energies, which the shipped set holds since 2026-12-05 (its largest is 0.24 %); 2.5 %
    for GPAW's zero-smearing extrapolation (a level of theory that says so), which is not
    the variational energy: it misses by the field dependence of the smearing term, 1.1
    meV on Cu(100) (0.3 meV for the free energy) and up to 1.9 % on the W(110) adatom
    (benchmarks/metal_energy_flavour.py)."""
    flavour = metal_metadata()["level_of_theory"].get("energy", "extrapolated")
    tolerance = 0.01 if flavour == "free" else 0.025
    by_geometry = {}
    for f in filter(lambda f: f.has("polarizability"), frames):
        key = np.round(f.atoms.positions, 6).tobytes()
        by_geometry.setdefault(key, []).append(f)
    pairs = [g for g in by_geometry.values() if len(g) >= 2]
    assert pairs, "no geometry labelled at two fields"
    for group in pairs:
        a, b = sorted(group, key=lambda f: f.efield[2])[:2]
        df = b.efield[2] - a.efield[2]
        mu = (a.labels["dipole"][2], b.labels["dipole"][2])
        alpha = (a.labels["polarizability"][2, 2], b.labels["polarizability"][2, 2])
        du = float(b.labels["energy"] - a.labels["energy"])
        size = 0.5 * (abs(mu[0]) + abs(mu[1])) * abs(df)
        assert abs(du + 0.5 * (mu[0] + mu[1]) * df) < tolerance * size, a.where()
        assert mu[1] - mu[0] == pytest.approx(0.5 * (alpha[0] + alpha[1]) * df, rel=0.02)
