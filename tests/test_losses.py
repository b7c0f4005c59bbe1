"""Loss normalisation: each term is scaled by the spread a model has to learn."""

import numpy as np
import pytest
from ase import Atoms

from fieldforce.data.frame import Frame
from fieldforce.training.losses import label_scales


def test_energy_scale_is_the_spread_left_after_the_composition_fit():
    # per-element energies of very different size (as total DFT energies are) plus a
    # small structure-dependent part: only the latter is the model's to learn
    rng = np.random.default_rng(0)
    element = {1: -13.6, 8: -2040.0, 11: -4420.0}
    frames, extra = [], []
    for formula in ["H2O", "H4O2", "Na2", "Na4", "NaOH", "Na2O", "H2", "O2"] * 3:
        atoms = Atoms(formula, positions=rng.normal(size=(len(Atoms(formula)), 3)))
        e = rng.normal(scale=0.05) * len(atoms)
        extra.append(e)
        energy = sum(element[z] for z in atoms.numbers) + e
        frames.append(Frame(atoms, {"energy": np.array(energy),
                                    "forces": rng.normal(size=(len(atoms), 3))}))
    scale = label_scales(frames)["energy"]
    per_atom = np.array([float(f.labels["energy"]) / len(f) for f in frames])
    assert per_atom.std() > 1000  # the raw spread: thousands of eV/atom
    # the fit leaves (about) the structure-dependent part, 0.05 eV/atom
    assert 0.02 < scale < 0.08
    # one stoichiometry: the fit removes only the mean, as before
    water = [f for f in frames if f.atoms.get_chemical_formula() in ("H2O", "H4O2")]
    e = np.array([float(f.labels["energy"]) / len(f) for f in water])
    assert label_scales(water)["energy"] < e.std() * 1.1 + 1e-9


def test_energy_scale_of_too_few_structures_for_the_fit_is_the_plain_spread():
    # two structures, two elements: the composition fit is exact and leaves nothing, so the
    # scale falls back to the spread of the per-atom energies (never ~0, which would blow
    # the energy term up)
    frames = [Frame(Atoms("H2O", positions=np.eye(3)), {"energy": np.array(-2070.0)}),
              Frame(Atoms("O2", positions=np.eye(3)[:2]), {"energy": np.array(-4085.0)})]
    per_atom = np.array([-2070.0 / 3, -4085.0 / 2])
    assert label_scales(frames)["energy"] == pytest.approx(per_atom.std(ddof=1), rel=1e-6)
