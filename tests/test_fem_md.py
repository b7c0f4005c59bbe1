"""MD coupled to the finite-element field (``field: {type: fem}``): re-solved when the
surface has moved, logged, and restored exactly on resume."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import torch

from fieldforce.fields import ExternalField, FEMField
from fieldforce.models import build_model, save_model
from fieldforce.simulation import MDRun, run_md

pytestmark = pytest.mark.usefixtures("one_thread")

#: a coarse mesh: a few seconds per solve of the small slab
COARSE = {"gap": 10.0, "size_surface": 0.6, "growth": 0.6}


def adatom_slab():
    from ase import Atoms
    from ase.build import fcc100
    from ase.constraints import FixAtoms

    slab = fcc100("Cu", size=(3, 3, 3), a=3.61, vacuum=6.0, orthogonal=True)
    top = slab.positions[:, 2].max()
    hollow = slab.positions[slab.positions[:, 2] > top - 0.1][0, :2] + 3.61 / 2 ** 1.5
    slab += Atoms("Cu", positions=[[*hollow, top + 1.7]])
    slab.set_constraint(FixAtoms(mask=slab.positions[:, 2] < slab.positions[:, 2].min() + 0.1))
    return slab


@pytest.fixture(scope="module")
def md_dir(tmp_path_factory):
    from fieldforce.datasets import load_metal

    d = tmp_path_factory.mktemp("fem_md")
    torch.manual_seed(0)
    model = build_model({"species": [29], "descriptor": {"cutoff": 3.0, "max_radial": 2,
                                                         "max_angular": 2}, "hidden": [8]})
    model.fit_statistics(load_metal("Cu(100)")[:10])
    model.backbone.energy_scale.mul_(0.1)  # gentle forces: the test is about the field
    save_model(model, d / "model.pt")
    ase.io.write(d / "slab.xyz", adatom_slab(), format="extxyz")
    return d


def config(out: str, **kw) -> dict:
    return {"structure": "slab.xyz", "model": "model.pt", "output": out,
            "ensemble": "langevin", "temperature_K": 600, "timestep_fs": 2.0, "steps": 8,
            "write_interval": 2, "seed": 3,
            "field": {"type": "fem", "e0": 0.5, "tolerance": 0.03, **COARSE}, **kw}


def test_the_field_resolves_only_when_the_surface_has_moved():
    atoms = adatom_slab()
    field = ExternalField.from_config({"type": "fem", "e0": 0.5, "tolerance": 0.05,
                                       "remesh": 0.3, **COARSE})
    assert isinstance(field, FEMField) and field.depends_on_atoms
    with pytest.raises(Exception, match="not been solved"):
        field(torch.zeros(len(atoms), 3))
    assert field.update(atoms, 0.0) and len(field.history) == 1
    values = field(torch.as_tensor(atoms.positions))
    # the per-atom probe field of the solve; the adatom (apex) is enhanced over E0
    np.testing.assert_allclose(values.numpy(), field.result.fields)
    assert field.history[0]["beta"] == pytest.approx(field.result.beta)
    assert field.result.beta > 1.02
    with pytest.raises(ValueError, match="1 point.s. outside the vacuum mesh"):
        field.result.solution.field(np.array([[1.0, 1.0, 500.0], [1.0, 1.0, 15.0]]))
    moved = atoms.copy()
    surface = np.flatnonzero(field.result.surface)
    moved.positions[surface[0]] += [0.0, 0.0, 0.04]  # RMS over the surface: well below 0.05
    assert not field.update(moved, 2.0) and len(field.history) == 1
    moved.positions[surface] += [0.0, 0.0, 0.06]
    assert field.update(moved, 4.0) and len(field.history) == 2
    assert field.history[1]["rms_displacement"] > 0.05
    # moved less than `remesh` (0.3 Å): the mesh is reused
    assert not field.history[1]["remeshed"] and field.history[0]["remeshed"]
    assert field.history[1]["elements"] == field.history[0]["elements"]
    moved.positions[surface[0]] += [0.4, 0.0, 0.0]  # one atom beyond `remesh`
    assert field.update(moved, 6.0) and field.history[2]["remeshed"]
    # on a reused mesh the metal follows the atoms: the adatom lifted by 0.8 Å raises the
    # apex enhancement as on a fresh mesh (0.11 against 0.07 measured on these coarse
    # elements; a metal left where it was would not raise it at all)
    far = FEMField(0.5, remesh=1.0, **COARSE)
    far.update(atoms, 0.0)
    lifted = atoms.copy()
    lifted.positions[-1, 2] += 0.8
    assert far.update(lifted, 2.0) and not far.history[1]["remeshed"]
    fresh = FEMField(0.5, **COARSE)
    fresh.update(lifted, 0.0)
    rise = fresh.result.beta - far.history[0]["beta"]
    assert rise > 0.03
    assert 0.5 * rise < far.history[1]["beta"] - far.history[0]["beta"] < 2.0 * rise
    assert far.result.beta == pytest.approx(fresh.result.beta, rel=0.05)
    assert far.result.charges.sum() == pytest.approx(fresh.result.charges.sum(), rel=1e-8)
    # every_fs forces a solve however little moved
    timed = FEMField(0.5, every_fs=10.0, **COARSE)
    assert timed.update(atoms, 0.0) and not timed.update(atoms, 5.0)
    assert timed.update(atoms, 10.0)
    # restore: the same solve from the saved state
    again = FEMField(0.5, tolerance=0.05, **COARSE)
    again.restore(atoms, field.state())
    np.testing.assert_allclose(again.result.fields, field.result.fields, rtol=1e-10)


def test_md_logs_the_solves_and_resumes_with_the_same_field(md_dir):
    straight = run_md(config("straight"), base_dir=md_dir, progress=False)
    log = (md_dir / "straight" / "field.log").read_text().splitlines()
    assert log[0].startswith("# time_fs  beta")
    solves = straight["field_solves_this_run"]
    assert len(log) - 1 == solves >= 2  # the first solve and at least one re-solve
    assert 1.0 < straight["field_beta_last"] < 3.0
    assert (md_dir / "straight" / "field_state.npz").exists()

    # the same run in two pieces: stopped after 4 steps, then resumed to 8
    piece = MDRun(config("pieces", steps=4), base_dir=md_dir, progress=False)
    piece.run()
    resumed = MDRun(config("pieces"), base_dir=md_dir, resume=True, progress=False)
    history = resumed.calc.field.history  # restored before the first step
    assert len(history) == 1 and history[0]["rms_displacement"] is None
    resumed.run()
    a = ase.io.read(md_dir / "straight" / "trajectory.xyz", ":")
    b = ase.io.read(md_dir / "pieces" / "trajectory.xyz", ":")
    assert [f.info["step"] for f in a] == [f.info["step"] for f in b]
    for fa, fb in zip(a[:3], b[:3], strict=True):  # up to the stop: the same run
        np.testing.assert_allclose(fb.positions, fa.positions, atol=1e-12)
        np.testing.assert_allclose(fb.arrays["atom_efield"], fa.arrays["atom_efield"],
                                   atol=1e-12)
    rows = [line.split() for line in log[1:]]
    pieces = [line.split() for line in
              (md_dir / "pieces" / "field.log").read_text().splitlines()[1:]]
    # the resumed piece first restores the active solve: the same time, mesh and beta as
    # the straight run's solve it replaces (the solve at 6 fs, step 3)
    restored = pieces[len(rows) - (len(pieces) - len(rows))]
    original = next(r for r in rows if r[0] == restored[0])
    assert restored[1:3] == original[1:3] and restored[5] == original[5]
    assert restored[4] == "-"
    # later solves are made at positions read back from the trajectory (8 decimals) on
    # the restored mesh (nothing moved far enough to re-mesh): the same run to the
    # file's precision. (A new mesh of a geometry moved by 1e-8 Å would be another mesh
    # of it, gmsh's, agreeing only to the mesh's discretisation noise.)
    assert [r[6] for r in pieces] == ["1"] + ["0"] * (len(pieces) - 1)  # meshed once
    for fa, fb in zip(a[3:], b[3:], strict=True):
        np.testing.assert_allclose(fb.positions, fa.positions, atol=1e-6)
        np.testing.assert_allclose(fb.arrays["atom_efield"], fa.arrays["atom_efield"],
                                   atol=1e-6)
