"""The shipped water dataset: complete, physically consistent, reproducible by the labeller."""

import numpy as np
import pytest

from fieldforce.datasets import load_water, water_metadata
from fieldforce.reference.backend import get_backend

PROPERTIES = ("energy", "forces", "dipole", "polarizability", "born_charges", "efield")


@pytest.fixture(scope="module")
def frames():
    return load_water()


def test_counts_and_labels_match_metadata(frames):
    meta = water_metadata()
    assert len(frames) == sum(meta["counts"].values())
    assert meta["counts"]["monomer"] >= 300 and meta["counts"]["dimer"] >= 200
    for kind, n_atoms in (("monomer", 3), ("dimer", 6), ("trimer", 9)):
        subset = load_water(kind)
        assert len(subset) == meta["counts"].get(kind, 0) + meta["counts"].get(f"{kind}_field", 0)
        assert all(len(f) == n_atoms for f in subset)
    for f in frames:
        assert all(f.has(p) for p in PROPERTIES), f.where()
    biased = load_water(field=True)
    strengths = [np.linalg.norm(f.efield) for f in biased]
    assert len(biased) > 0 and 0.01 - 1e-9 <= min(strengths) and max(strengths) <= 0.1 + 1e-9


def test_labels_obey_exact_relations(frames):
    for f in frames:
        z, alpha = f.labels["born_charges"], f.labels["polarizability"]
        # acoustic sum rule for neutral clusters, and total force = Q E = 0
        assert np.abs(z.sum(axis=0)).max() < 2e-3, f.where()
        assert np.abs(f.labels["forces"].sum(axis=0)).max() < 2e-3, f.where()
        np.testing.assert_allclose(alpha, alpha.T, atol=1e-5)
        assert np.linalg.eigvalsh(alpha).min() > 0, f.where()


def test_shipped_frame_is_reproduced_by_the_labeller():
    meta = water_metadata()["level_of_theory"]
    settings = {k: meta[k] for k in ("xc", "basis", "density_fit", "grid_level", "field_step")}
    frame = next(f for f in load_water("monomer", field=True))
    fresh = get_backend("pyscf", **settings).label(frame.atoms, frame.efield, PROPERTIES[:-1])
    assert float(fresh["energy"]) == pytest.approx(float(frame.labels["energy"]), abs=1e-5)
    for key, atol in (("forces", 1e-5), ("dipole", 1e-6), ("polarizability", 1e-5),
                      ("born_charges", 1e-4)):
        np.testing.assert_allclose(fresh[key], frame.labels[key], atol=atol, err_msg=key)
