"""The metal dataset's geometries: hop paths (EMT NEB for Cu), fixed bottom layers,
thermal displacements with the Einstein model's variance, labelling order."""

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.units import _amu, _hbar, _k

from fieldforce.datasets import make_metal as mm
from fieldforce.datasets import metal_slabs as slabs
from fieldforce.errors import DataError


def test_cu100_hop_crosses_the_bridge_symmetrically():
    path = slabs.hop_path("Cu(100)")
    assert len(path) == 7
    first, saddle, last = path[0], path[3], path[-1]
    a = slabs.LATTICE["Cu"] / np.sqrt(2)  # surface nearest-neighbour distance
    hop = last.positions[-1] - first.positions[-1]
    assert np.linalg.norm(hop[:2]) == pytest.approx(a, abs=1e-3)  # one lattice step
    # the saddle is the bridge: halfway along the hop, higher than the hollows
    np.testing.assert_allclose(saddle.positions[-1, :2],
                               first.positions[-1, :2] + hop[:2] / 2, atol=0.02)
    assert saddle.positions[-1, 2] > first.positions[-1, 2] + 0.1
    energies = []
    for image in path:
        image = image.copy()
        image.calc = EMT()
        energies.append(image.get_potential_energy())
    assert np.argmax(energies) == 3
    np.testing.assert_allclose(energies, energies[::-1], atol=2e-3)  # mirror-symmetric hop
    for image in path:  # bottom layer fixed, enough vacuum for the DFT backend
        fixed = image.constraints[0].index
        z = image.positions[:, 2]
        assert len(fixed) == 4 and z[fixed].max() < np.delete(z, fixed).min() - 1.0
        assert min(z.min(), image.cell[2, 2] - z.max()) >= slabs.VACUUM - 1e-9


def test_thermal_displacements_have_the_einstein_variance():
    slab = slabs.clean_slab("Cu(111)")
    rng = np.random.default_rng(0)
    temperature = 600.0
    steps = np.array([slabs.thermal(slab, temperature, rng).positions - slab.positions
                      for _ in range(400)])
    fixed = slab.constraints[0].index
    assert np.abs(steps[:, fixed]).max() == 0
    free = np.delete(steps, fixed, axis=1)
    omega = _k * slabs.EINSTEIN["Cu"] / _hbar
    expected = np.sqrt(_k * temperature / (63.546 * _amu * omega**2)) * 1e10
    assert free.std() == pytest.approx(expected, rel=0.03)


def test_sample_orders_sites_first_and_fields_along_the_normal(tmp_path):
    from fieldforce.data.io import read_frames

    info = mm.sample(tmp_path / "metal.xyz", systems=("Cu(100)",))
    frames = read_frames(tmp_path / "metal.xyz")
    assert info["frames"] == len(frames) == 4 * 5 + 5 + 16 + 4
    kinds = [f.atoms.info["config_type"] for f in frames]
    # paths at 0, +-0.5 V/Å; thermal frames (the repulsion a relaxation needs); thick
    # slabs; paths at +-1 V/Å
    assert kinds[:12] == ["adatom_path"] * 12
    assert set(kinds[12:32]) == {"adatom_thermal", "clean_thermal"}
    assert kinds[32:37] == ["clean_thick"] * 5 and kinds[37:] == ["adatom_path"] * 8
    assert [len(f.atoms) for f in frames[32:37]] == [20, 20, 20, 28, 28]
    targets = [f.atoms.info["target_field"] for f in frames[:12]]
    assert sorted(set(targets)) == [-0.5, 0.0, 0.5]  # the main fields first
    fields = np.array([f.efield for f in frames])
    assert np.abs(fields[:, :2]).max() == 0 and np.abs(fields[:, 2]).max() <= 1.0
    assert all(f.atoms.constraints for f in frames)


def test_finish_ships_extra_labelled_frames_once_and_counts_them(tmp_path):
    """`finish --extra` appends labelled frames (the relaxed W states) to the set, skips
    those already in it, and the metadata counts them and names their commands."""
    import json

    from fieldforce.data.frame import Frame
    from fieldforce.data.io import read_frames, write_frames

    def labelled(system: str, shift: float, relaxed: bool = False,
                 thermal: bool = False) -> Frame:
        atoms = mm.hop_path(system, images=3, size=(2, 2))[0]
        atoms.positions[-1, 2] += shift
        atoms.info = {"system": system, "image": 0, "target_field": 0.0, "gauss_ratio": 1.0,
                      "config_type": "adatom_thermal" if thermal else "adatom_path",
                      **({"relaxed": True} if relaxed else {}),
                      **({"around_relaxed": True} if thermal else {})}
        return Frame(atoms, {"energy": -1.0 - shift, "forces": np.zeros((len(atoms), 3)),
                             "efield": np.zeros(3)})

    write_frames([labelled("Cu(100)", 0.0)], tmp_path / "metal.xyz")
    extra = [labelled("W(110)", 0.0, True), labelled("W(110)", 0.1, True)]
    write_frames(extra, tmp_path / "w.xyz")
    for _ in range(2):  # the second time adds nothing
        assert mm.main(["finish", str(tmp_path / "metal.xyz"), "--extra",
                        str(tmp_path / "w.xyz")]) == 0
    frames = read_frames(tmp_path / "metal.xyz")
    assert [f.atoms.info["system"] for f in frames] == ["Cu(100)", "W(110)", "W(110)"]
    meta = json.loads((tmp_path / "metal_meta.json").read_text())
    assert meta["counts"] == {"Cu(100) adatom_path": 1, "W(110) adatom_path": 2}
    assert any("relax 'W(110)' saddle" in c for c in meta["commands"])
    assert not any("--thermal" in c for c in meta["commands"])
    assert meta["commands"][-1].endswith("--extra w.xyz")
    # thermal displacements of the relaxed states: counted, and their commands named
    write_frames([labelled("W(110)", 0.2, thermal=True)], tmp_path / "hot.xyz")
    assert mm.main(["finish", str(tmp_path / "metal.xyz"), "--extra", str(tmp_path / "w.xyz"),
                    str(tmp_path / "hot.xyz")]) == 0
    meta = json.loads((tmp_path / "metal_meta.json").read_text())
    assert meta["counts"]["W(110) adatom_thermal"] == 1 and meta["frames"] == 4
    assert any("--thermal 4 --out w_relaxed_thermal.xyz" in c for c in meta["commands"])
    assert meta["commands"][-1].endswith("--extra w.xyz hot.xyz")
    # a labelling job stopped early (or still running): its finished parts ship too, in
    # the order of its input, once
    parts = tmp_path / "hot2.xyz.parts"
    parts.mkdir()
    later, earlier = labelled("W(110)", 0.3, thermal=True), labelled("W(110)", 0.4, thermal=True)
    later.atoms.info["label_position"], earlier.atoms.info["label_position"] = 5, 2
    write_frames([later], parts / "b.xyz")
    write_frames([earlier], parts / "a2.xyz")
    write_frames([earlier], parts / ".a2.xyz.half.xyz")  # a killed writer's temporary
    for _ in range(2):
        assert mm.main(["finish", str(tmp_path / "metal.xyz"), "--extra",
                        str(tmp_path / "hot2.xyz")]) == 0
    frames = read_frames(tmp_path / "metal.xyz")
    assert len(frames) == 6
    assert [round(f.atoms.positions[-1, 2] - frames[1].atoms.positions[-1, 2], 6)
            for f in frames[4:]] == [0.4, 0.3]
    with pytest.raises(DataError, match="nothing.xyz: no such labelled file"):
        mm.main(["finish", str(tmp_path / "metal.xyz"), "--extra",
                 str(tmp_path / "nothing.xyz")])
