"""Reading foreign extxyz through specs, canonical round trips, validation, splits, CLI."""

import textwrap

import numpy as np
import pytest
from ase import Atoms

from fieldforce import units
from fieldforce.cli.main import main
from fieldforce.data.frame import Frame
from fieldforce.data.io import read_frames, write_frames
from fieldforce.data.spec import load_spec
from fieldforce.data.splits import random_split, split_by_tag
from fieldforce.errors import ConfigError, DataError, UnitError

WATER = [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]]


def foreign_frame(energy="-76.3", mu="0.1 0.2 -0.3", alpha=None, positions=WATER, extra=""):
    """One frame in the SA-GPR style: atomic units, keys potential/mu/alpha."""
    alpha = alpha or "9.8 0.01 0.02 0.01 10.3 0.0 0.02 0.0 9.5"
    lines = [
        "3",
        f'Properties=species:S:1:pos:R:3 potential={energy} mu="{mu}" alpha="{alpha}" '
        f'config_type=mono {extra}',
    ]
    for sym, p in zip("OHH", positions, strict=True):
        lines.append(f"{sym} {p[0]:.6f} {p[1]:.6f} {p[2]:.6f}")
    return "\n".join(lines) + "\n"


def write_spec(tmp_path, body: str, frames: list[str]):
    (tmp_path / "data.xyz").write_text("".join(frames))
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(body))
    return spec


SPEC = """\
path: data.xyz
keys: {energy: potential, dipole: mu, polarizability: alpha}
units: {energy: hartree, dipole: e*bohr, polarizability: bohr^3}
"""


def test_spec_converts_atomic_units(tmp_path):
    spec = write_spec(tmp_path, SPEC, [foreign_frame(), foreign_frame(energy="-76.4")])
    frames = read_frames(spec)
    assert len(frames) == 2
    f = frames[1]
    assert float(f.labels["energy"]) == pytest.approx(-76.4 * 27.211386245988, rel=1e-12)
    np.testing.assert_allclose(f.labels["dipole"], np.array([0.1, 0.2, -0.3]) * 0.529177210903)
    # bohr^3 -> e Å^2/V: multiply by a0^3 and divide by k_e.
    expected = 9.8 * 0.529177210903**3 / units.COULOMB_CONSTANT
    assert f.labels["polarizability"][0, 0] == pytest.approx(expected, rel=1e-10)
    assert f.atoms.info == {"config_type": "mono"}  # labels stripped from info, tags kept
    assert f.source.endswith("data.xyz") and f.index == 1


def test_canonical_round_trip_without_spec(tmp_path):
    rng = np.random.default_rng(0)
    atoms = Atoms("OH2", positions=WATER, cell=np.diag([9.0, 10.0, 11.0]), pbc=True)
    atoms.info["config_type"] = "x"
    pol = rng.normal(size=(3, 3))
    stress = rng.normal(size=(3, 3))
    labels = {
        "energy": np.array(-2077.123456789012),
        "forces": rng.normal(size=(3, 3)),
        "stress": stress + stress.T,
        "dipole": rng.normal(size=3),
        "polarizability": pol + pol.T,
        "charges": rng.normal(size=3),
        "born_charges": rng.normal(size=(3, 3, 3)),
        "polarization": rng.normal(size=3),
        "efield": np.array([0.0, 0.01, -0.02]),
        "total_charge": np.array(0.0),
    }
    for name in ("out.xyz", "out.xyz.gz"):
        write_frames([Frame(atoms, labels)], tmp_path / name)
        (back,) = read_frames(tmp_path / name)
        assert set(back.labels) == set(labels)
        for key, value in labels.items():
            # extxyz stores per-atom columns with 8 decimals
            np.testing.assert_allclose(back.labels[key], value, atol=1e-8, rtol=0, err_msg=key)
        np.testing.assert_allclose(back.atoms.cell.array, atoms.cell.array)
        assert back.atoms.pbc.all() and back.atoms.info["config_type"] == "x"


def test_born_charges_are_row_major_nine_per_atom(tmp_path):
    z = np.arange(27.0).reshape(3, 3, 3)
    write_frames([Frame(Atoms("OH2", positions=WATER), {"born_charges": z})], tmp_path / "z.xyz")
    text = (tmp_path / "z.xyz").read_text().splitlines()
    assert "born_charges:R:9" in text[1]
    assert [float(x) for x in text[2].split()[4:13]] == list(range(9))
    np.testing.assert_array_equal(read_frames(tmp_path / "z.xyz")[0].labels["born_charges"], z)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([foreign_frame(), foreign_frame().replace(' mu="0.1 0.2 -0.3"', "")],
         r"data.xyz, frame 1, key 'mu': missing"),
        ([foreign_frame(mu="0.1 0.2")], r"frame 0, key 'mu': expected 3 numbers for dipole"),
        ([foreign_frame(), foreign_frame(energy="nan")], r"frame 1, key 'potential': non-finite"),
        ([foreign_frame(alpha="9.8 1.0 0 0 10.3 0 0 0 9.5")],
         r"frame 0, key 'alpha': polarizability must be symmetric"),
        ([foreign_frame(positions=[[0, 0, 0], [0, 0, 0.3], [0, 0.8, -0.5]])],
         r"frame 0, key 'pos': atoms 0 and 1 are 0.300 Å apart"),
    ],
)
def test_bad_data_gives_one_sentence_naming_file_frame_key(tmp_path, frames, match):
    spec = write_spec(tmp_path, SPEC, frames)
    with pytest.raises(DataError, match=match):
        read_frames(spec)


def test_bad_specs(tmp_path):
    with pytest.raises(UnitError, match="spec.yaml, key 'units.dipole'.*not a unit of dipole"):
        read_frames(write_spec(tmp_path, SPEC.replace("e*bohr", "hartree"), [foreign_frame()]))
    with pytest.raises(UnitError, match="'units.energy': unit 'parsec' is not a unit of energy"):
        read_frames(write_spec(tmp_path, SPEC.replace("hartree", "parsec"), [foreign_frame()]))
    with pytest.raises(ConfigError, match="unknown label 'dipoles'"):
        load_spec({"path": "x.xyz", "keys": {"dipoles": "mu"}})
    with pytest.raises(ConfigError, match="missing key 'path'"):
        load_spec({"keys": {}})
    with pytest.raises(DataError, match="no such file"):
        read_frames(tmp_path / "missing.xyz")


def test_periodic_minimum_image_distance(tmp_path):
    # Two atoms 0.3 Å apart only through the periodic boundary.
    atoms = Atoms("H2", positions=[[0.1, 0, 0], [4.8, 0, 0]], cell=np.eye(3) * 5.0, pbc=True)
    write_frames([Frame(atoms, {})], tmp_path / "p.xyz")
    with pytest.raises(DataError, match="0.300 Å apart"):
        read_frames(tmp_path / "p.xyz")


def test_a_sliver_of_a_cell_is_refused_without_a_search():
    # 20 atoms in a 1 Å³ skewed cell must overlap (sphere packing); ASE's search over its
    # images took minutes, the bound takes none
    import time

    from fieldforce.data.validation import check_geometry

    cell = np.array([[10.0, 0, 0], [9.99, 0.01, 0], [0, 0, 10.0]])
    positions = np.random.default_rng(0).uniform(0, 1, (20, 3)) @ cell
    frame = Frame(Atoms("H20", positions=positions, cell=cell, pbc=True), {}, source="s.xyz",
                  index=0)
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"s.xyz, frame 0, key 'Lattice': the cell's volume, "
                                        r"1 Å³, cannot hold 20 atoms 0.5 Å apart"):
        check_geometry(frame)
    assert time.perf_counter() - start < 1.0


def _frames(n):
    out = []
    for i in range(n):
        a = Atoms("H", positions=[[0, 0, 0]])
        a.info["config_type"] = "a" if i % 3 else "b"
        out.append(Frame(a, {"energy": np.array(float(i))}, index=i))
    return out


def test_random_split_reproducible_and_disjoint():
    frames = _frames(50)
    train, test = random_split(frames, [0.8, 0.2], seed=3)
    again, _ = random_split(frames, [0.8, 0.2], seed=3)
    other, _ = random_split(frames, [0.8, 0.2], seed=4)
    ids = lambda part: [f.index for f in part]  # noqa: E731
    assert len(train) == 40 and len(test) == 10
    assert ids(train) == ids(again) and ids(train) != ids(other)
    assert not set(ids(train)) & set(ids(test))
    with pytest.raises(ConfigError):
        random_split(frames, [0.9, 0.3])


def test_split_by_tag():
    held, kept = split_by_tag(_frames(9), "config_type", ["b"])
    assert [f.index for f in held] == [0, 3, 6] and len(kept) == 6
    # values from a command line are text; they match integer tags by their text
    frames = _frames(9)
    for f in frames:
        f.atoms.info["layers"] = 3 + f.index % 2
    held, kept = split_by_tag(frames, "layers", ["4"])
    assert [f.index for f in held] == [1, 3, 5, 7] and len(kept) == 5
    # a value no frame has holds out nothing: an error naming what is there
    with pytest.raises(ConfigError, match=r"config_type = 'B'; present: a, b"):
        split_by_tag(_frames(9), "config_type", ["B"])


def test_cli_info_convert_split(tmp_path, capsys):
    spec = write_spec(tmp_path, SPEC, [foreign_frame(), foreign_frame(energy="-76.31")])
    assert main(["data", "info", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "frames        2" in out and "polarizability" in out and "e*angstrom^2/V" in out
    canon = tmp_path / "canon.xyz"
    assert main(["data", "convert", str(spec), str(canon)]) == 0
    np.testing.assert_allclose(read_frames(canon)[1].labels["energy"],
                               read_frames(spec)[1].labels["energy"])
    assert main(["data", "split", str(canon), str(tmp_path / "a.xyz"), str(tmp_path / "b.xyz"),
                 "--test-fraction", "0.5"]) == 0
    assert len(read_frames(tmp_path / "a.xyz")) == len(read_frames(tmp_path / "b.xyz")) == 1


def test_cli_bad_input_exits_nonzero_without_partial_output(tmp_path, capsys):
    spec = write_spec(tmp_path, SPEC, [foreign_frame(), foreign_frame(mu="1 2")])
    out = tmp_path / "out.xyz"
    assert main(["data", "convert", str(spec), str(out)]) == 2
    err = capsys.readouterr().err
    assert "frame 1, key 'mu'" in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".out.xyz*"))
    assert main(["data", "info", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read data spec" in capsys.readouterr().err
