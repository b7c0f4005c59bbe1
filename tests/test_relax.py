"""Resumable relaxations (fieldforce.datasets.relax) with ASE's EMT on a Cu(100) adatom:
an interrupted and resumed relaxation ends where an uninterrupted one does; a saddle
held by symmetry keeps the adatom's lateral position and relaxes everything else."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import fcc100
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms

from fieldforce.datasets.relax import hold_lateral, relax
from fieldforce.errors import DataError


def adatom(site: str) -> Atoms:
    """A 2x2 Cu(100) slab, bottom layer fixed, an adatom 1.9 Å above a hollow or a bridge
    site (both symmetry points of the surface), the slab rattled a little."""
    slab = fcc100("Cu", size=(2, 2, 3), a=3.61, vacuum=6.0)
    top = slab.positions[:, 2].max()
    corner = slab.positions[np.argmax(slab.positions[:, 2])][:2]
    half = 3.61 / np.sqrt(2) / 2  # half the surface nearest-neighbour distance
    shift = {"hollow": (half, half), "bridge": (half, 0.0)}[site]
    slab += Atoms("Cu", positions=[[corner[0] + shift[0], corner[1] + shift[1], top + 1.9]])
    slab.set_constraint(FixAtoms(mask=slab.positions[:, 2] < slab.positions[:, 2].min() + 0.1))
    rng = np.random.default_rng(0)
    slab.positions[:-1] += rng.normal(scale=0.03, size=(len(slab) - 1, 3)) * (
        slab.positions[:-1, 2:3] > slab.positions[:, 2].min() + 0.1)
    return slab


def test_an_interrupted_relaxation_ends_where_an_uninterrupted_one_does(tmp_path):
    atoms = adatom("hollow")
    whole = relax(atoms, EMT(), tmp_path / "whole", fmax=0.01)
    assert whole.converged and whole.stopped_by == "converged" and whole.steps > 6
    assert whole.held_lateral_force is None
    first = relax(atoms, EMT(), tmp_path / "parts", fmax=0.01, max_steps=3)
    assert not first.converged and first.stopped_by == "max_steps" and first.steps == 3
    again = relax(atoms, EMT(), tmp_path / "parts", fmax=0.01)
    assert again.converged and again.steps == whole.steps
    import ase.io

    a = ase.io.read(tmp_path / "whole" / "relaxed.xyz")
    # the trajectories hold full precision: the resumed path is the uninterrupted one
    steps_a = ase.io.read(tmp_path / "whole" / "relax.traj", ":")
    steps_b = ase.io.read(tmp_path / "parts" / "relax.traj", ":")
    assert len(steps_a) == len(steps_b) == whole.steps + 1
    assert max(np.abs(x.positions - y.positions).max()
               for x, y in zip(steps_a, steps_b, strict=True)) < 1e-12
    assert json.loads((tmp_path / "parts" / "relax.json").read_text())["converged"]
    # the fixed layer did not move; the forces on the free atoms are below fmax
    fixed = atoms.constraints[0].index
    assert np.allclose(a.positions[fixed], atoms.positions[fixed], atol=1e-7)  # file precision
    check = a.copy()
    check.set_constraint(FixAtoms(indices=fixed))
    check.calc = EMT()
    assert np.abs(check.get_forces()).max() < 0.01
    # a finished relaxation called again does nothing more
    assert relax(atoms, EMT(), tmp_path / "parts", fmax=0.01).steps == whole.steps


def test_a_saddle_held_by_symmetry_keeps_the_adatom_over_its_site(tmp_path):
    """The adatom held over the bridge site relaxes in height only; the barrier (bridge
    minus hollow, both relaxed) is EMT's, and the held adatom feels a lateral force of
    zero by symmetry once the slab has relaxed around it (the site is a stationary point)."""
    saddle = adatom("bridge")
    hold_lateral(saddle, len(saddle) - 1)
    result = relax(saddle, EMT(), tmp_path / "saddle", fmax=0.01)
    import ase.io

    relaxed = ase.io.read(tmp_path / "saddle" / "relaxed.xyz")
    assert np.allclose(relaxed.positions[-1, :2], saddle.positions[-1, :2], atol=1e-7)
    assert abs(relaxed.positions[-1, 2] - saddle.positions[-1, 2]) > 0.01  # it moved down
    free = relaxed.copy()
    free.set_constraint(FixAtoms(indices=saddle.constraints[0].index))
    free.calc = EMT()
    assert np.abs(free.get_forces()[-1, :2]).max() < 0.05
    assert result.held_lateral_force is not None and result.held_lateral_force < 0.05
    minimum = relax(adatom("hollow"), EMT(), tmp_path / "minimum", fmax=0.01)
    # EMT's hop barrier on Cu(100), ~0.4 eV (0.42 in this 2x2 cell when written)
    assert result.energy - minimum.energy == pytest.approx(0.42, abs=0.05)


def test_holding_an_atom_off_a_symmetry_point_shows_in_the_lateral_force(tmp_path):
    """The check of the saddle's assumption can fail: held 0.4 Å off the bridge site, the
    relaxed adatom is pushed sideways."""
    off = adatom("bridge")
    off.positions[-1, 0] += 0.4
    hold_lateral(off, len(off) - 1)
    result = relax(off, EMT(), tmp_path / "off", fmax=0.01)
    assert result.converged and result.held_lateral_force > 0.1


def test_the_relaxed_geometry_is_refused_before_convergence_unless_asked_for(tmp_path):
    """``relaxed_geometry``: a run stopped early is refused, or given with its last
    finished step's energy and largest force (every step's frame carries its results);
    a converged saddle comes back from relaxed.xyz without the constraint that held it,
    its fixed layer still fixed. The log of older runs, whose frames lack results, stands in."""
    from ase.constraints import FixCartesian

    from fieldforce.datasets.relax import relaxed_geometry

    saddle = adatom("bridge")
    hold_lateral(saddle, len(saddle) - 1)
    early = relax(saddle, EMT(), tmp_path / "saddle", fmax=0.01, max_steps=2)
    with pytest.raises(DataError, match="has not converged"):
        relaxed_geometry(tmp_path / "saddle")
    atoms, result = relaxed_geometry(tmp_path / "saddle", unconverged=True)
    assert result.steps == 2 and not result.converged and result.stopped_by == "unconverged"
    assert result.energy == pytest.approx(early.energy, abs=1e-9)
    assert result.max_force == pytest.approx(early.max_force, abs=1e-9)
    assert not any(isinstance(c, FixCartesian) for c in atoms.constraints)
    import ase.io
    from ase.io.trajectory import Trajectory

    # a trajectory written the old way (positions only after step 0): the log stands in
    frames = ase.io.read(tmp_path / "saddle" / "relax.traj", ":")
    (tmp_path / "old").mkdir()
    with Trajectory(tmp_path / "old" / "relax.traj", "w") as old:
        for frame in frames:
            plain = frame.copy()  # .copy() drops the stored results
            old.write(plain)
    (tmp_path / "old" / "relax.log").write_text(
        (tmp_path / "saddle" / "relax.log").read_text())
    _, logged = relaxed_geometry(tmp_path / "old", unconverged=True)
    assert logged.max_force == pytest.approx(early.max_force, abs=1e-4)
    done = relax(saddle, EMT(), tmp_path / "saddle", fmax=0.01)
    atoms, result = relaxed_geometry(tmp_path / "saddle")
    assert result.converged and result.steps == done.steps
    assert not any(isinstance(c, FixCartesian) for c in atoms.constraints)
    assert [type(c) for c in atoms.constraints] == [FixAtoms]
    assert sorted(atoms.constraints[0].index) == sorted(saddle.constraints[0].index)
    assert np.allclose(atoms.positions[-1, :2], saddle.positions[-1, :2], atol=1e-7)
    # make_metal's `relaxed` tags it as the dataset's saddle image at the fields asked for
    from fieldforce.data.io import read_frames
    from fieldforce.datasets import make_metal

    out = tmp_path / "relaxed.xyz"
    assert make_metal.main(["relaxed", "Cu(100)", "--saddle", str(tmp_path / "saddle"),
                            "--fields", "0", "0.5", "--out", str(out)]) == 0
    frames = read_frames(out)
    assert [f.atoms.info["target_field"] for f in frames] == [0.0, 0.5]
    assert {f.atoms.info["image"] for f in frames} == {3}
    assert {f.atoms.info["config_type"] for f in frames} == {"adatom_path"}
    assert np.allclose(frames[1].efield, [0.0, 0.0, 0.5])
    assert np.allclose(frames[0].atoms.positions, atoms.positions, atol=1e-6)
    # --thermal: Einstein-model displacements around the relaxed state instead, at random
    # fields; the fixed layer stays put, and nothing is tagged as the relaxed state itself
    hot = tmp_path / "thermal.xyz"
    assert make_metal.main(["relaxed", "Cu(100)", "--saddle", str(tmp_path / "saddle"),
                            "--thermal", "3", "--out", str(hot)]) == 0
    thermal = read_frames(hot)
    assert [f.atoms.info["temperature"] for f in thermal] == [300.0, 600.0, 900.0]
    assert {f.atoms.info["config_type"] for f in thermal} == {"adatom_thermal"}
    assert not any("relaxed" in f.atoms.info for f in thermal)
    fixed = np.isin(np.arange(len(atoms)), atoms.constraints[0].index)
    for f in thermal:
        step = np.linalg.norm(f.atoms.positions - atoms.positions, axis=1)
        assert np.all(step[fixed] < 1e-9) and np.all(step[~fixed] > 1e-4)
        assert -1.0 <= f.atoms.info["target_field"] <= 1.0
        assert np.allclose(f.efield, [0.0, 0.0, f.atoms.info["target_field"]])
    again = tmp_path / "again.xyz"
    make_metal.main(["relaxed", "Cu(100)", "--saddle", str(tmp_path / "saddle"),
                     "--thermal", "3", "--out", str(again)])
    assert np.array_equal(read_frames(again)[2].atoms.positions, thermal[2].atoms.positions)
