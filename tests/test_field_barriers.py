"""Barriers in a normal field by NEB, against the exact first-order law and symmetry.

The calculator is EMT plus exactly known field terms: the adatom carries a charge q
against the slab (dipole mu = q (r_ad - mean slab position)) and a height-dependent
polarizability, U = U_EMT - F.mu - 1/2 alpha(R) F². At first order in F the barrier must
change by -dmu F with dmu read at the zero-field states (relaxation enters at second
order only), at zero field it is EMT's, and a field along the normal keeps the Cu(100)
hop's mirror symmetry (the saddle stays at the bridge)."""

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from fieldforce.analysis.barriers import fit_barriers, plot_barriers
from fieldforce.datasets import metal_slabs as slabs
from fieldforce.simulation.neb import field_barriers

Q, ALPHA1 = 0.3, 0.05  # e; e·Å²/V per Å² of adatom height


class AdatomInField(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "dipole"]

    def __init__(self, efield):
        super().__init__()
        self.efield = np.asarray(efield, float)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = EMT()
        energy, forces = a.get_potential_energy(), a.get_forces()
        n = len(a) - 1
        d = a.positions[-1] - a.positions[:-1].mean(axis=0)  # adatom vs slab, Å
        grad_d = np.full((len(a), 1), -1.0 / n)  # d(d)/d(r_i), the same for x, y, z
        grad_d[-1] = 1.0
        f = self.efield
        mu = Q * d
        alpha_zz = ALPHA1 * d[2] ** 2
        energy += -f @ mu - 0.5 * alpha_zz * f[2] ** 2
        forces += Q * f[None, :] * grad_d
        forces[:, 2] += 0.5 * ALPHA1 * 2 * d[2] * f[2] ** 2 * grad_d[:, 0]
        induced = np.array([0.0, 0.0, alpha_zz * f[2]])  # -dU/dF: permanent + induced
        self.results = {"energy": energy, "free_energy": energy, "forces": forces,
                        "dipole": mu + induced}


@pytest.fixture(scope="module")
def cu100():
    path = slabs.hop_path("Cu(100)")
    return path, field_barriers(AdatomInField, path[0], path[-1], [-0.2, -0.1, 0, 0.1, 0.2],
                                images=7, fmax=0.01)


def test_first_order_barrier_shift_is_minus_dmu_f(cu100):
    path, result = cu100
    assert all(result.converged)
    fit = fit_barriers(result.fields, result.barriers)
    assert result.dmu > 0.05  # the bridge sits higher: a larger dipole along the normal
    assert fit.dmu == pytest.approx(result.dmu, rel=0.02)
    direct_dalpha = ALPHA1 * (result.dipoles["saddle"] ** 2 - result.dipoles["initial"] ** 2
                              ) / Q**2
    assert result.dalpha == pytest.approx(direct_dalpha, rel=1e-3, abs=1e-5)
    # at zero field: EMT's barrier of the sampler's own path
    emt = []
    for image in (path[0], path[3]):
        image = image.copy()
        image.calc = EMT()
        emt.append(image.get_potential_energy())
    assert result.barriers[2] == pytest.approx(emt[1] - emt[0], abs=5e-3)


def test_normal_field_keeps_the_saddle_at_the_bridge(cu100, tmp_path):
    _, result = cu100
    assert result.saddle_index.tolist() == [3] * 5
    a = slabs.LATTICE["Cu"] / np.sqrt(2)
    for path in result.paths:  # half a lattice step from both ends (the 2x2 cell is periodic)
        saddle = path[3].copy()
        saddle += path[0][-1:]
        saddle += path[-1][-1:]
        for end in (-2, -1):
            lateral = saddle.get_distance(len(path[3]) - 1, len(saddle) + end, mic=True,
                                          vector=True)[:2]
            assert np.linalg.norm(lateral) == pytest.approx(a / 2, abs=0.02)
    fit = fit_barriers(result.fields, result.barriers)
    out = plot_barriers(tmp_path / "em.png", result.fields, result.barriers, fit,
                        direct=(fit.e0, result.dmu, result.dalpha))
    assert out.stat().st_size > 1000


def test_fit_recovers_an_exact_parabola_and_refuses_two_fields():
    from fieldforce.errors import ConfigError

    f = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    fit = fit_barriers(f, 0.5 - 0.2 * f - 0.5 * 0.3 * f**2)
    assert (fit.e0, fit.dmu, fit.dalpha) == pytest.approx((0.5, 0.2, 0.3), abs=1e-12)
    with pytest.raises(ConfigError, match="at least three distinct fields"):
        fit_barriers([0, 0.5, 0.5], [1, 2, 3])


def _cli_inputs(tmp_path, seeds=(0,)) -> list:
    """Untrained Cu models (statistics fitted on the EMT hop path; ``model{seed}.pt`` per
    seed, different weights) and the hop's end states as a.xyz and b.xyz."""
    import torch

    from fieldforce.data.frame import Frame
    from fieldforce.data.io import write_frames
    from fieldforce.models import build_model, save_model

    path = slabs.hop_path("Cu(100)")
    frames = []
    for image in path:
        image = image.copy()
        image.calc = EMT()
        frames.append(Frame(image, {"energy": np.array(image.get_potential_energy()),
                                    "forces": image.get_forces()}))
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model({"species": [29]})
        model.fit_statistics(frames)
        models.append(tmp_path / f"model{seed}.pt")
        save_model(model, models[-1])
    write_frames([Frame(path[0])], tmp_path / "a.xyz")
    write_frames([Frame(path[-1])], tmp_path / "b.xyz")
    return models


def test_cli_barrier_writes_the_named_keys_and_refuses_bad_input(tmp_path, capsys):
    import json

    from fieldforce.cli.main import main as cli_main

    path = slabs.hop_path("Cu(100)")
    (model,) = _cli_inputs(tmp_path)
    args = ["analyze", "barrier", str(model), "--initial",
            str(tmp_path / "a.xyz"), "--final", str(tmp_path / "b.xyz"), "--images", "3",
            "--steps", "3"]
    assert cli_main(args + ["--fields", "-0.5", "0", "0.5", "--json", str(tmp_path / "o.json"),
                            "--plot", str(tmp_path / "o.png"),
                            "--paths", str(tmp_path / "paths.xyz")]) == 0
    out = json.loads((tmp_path / "o.json").read_text())
    assert out["fields"] == [-0.5, 0.0, 0.5] and len(out["barriers"]) == 3
    # the relaxed bands: their energies and saddles are the JSON's
    import ase.io

    bands = ase.io.read(tmp_path / "paths.xyz", ":")
    assert len(bands) == 9 and all(len(a) == len(path[0]) for a in bands)
    for k, field in enumerate(out["fields"]):
        band = [a for a in bands if a.info["field_V_per_A"] == field]
        assert [a.info["image"] for a in band] == [0, 1, 2]
        np.testing.assert_allclose([a.info["energy_eV"] for a in band], out["energies"][k])
        assert [a.info["saddle"] for a in band].index(True) == out["saddle_index"][k]
    assert np.isfinite([out["dmu"], out["dalpha"], *out["barriers"]]).all()
    assert out["normal"] == [0.0, 0.0, 1.0] and (tmp_path / "o.png").stat().st_size > 1000
    capsys.readouterr()
    assert cli_main(args + ["--fields", "0", "--json", str(tmp_path / "a.xyz")]) != 0
    assert "--json" in capsys.readouterr().err
    assert cli_main(args + ["--fields", "0", "--images", "2", "--json",
                            str(tmp_path / "x.json")]) != 0
    assert "--images must be at least 3" in capsys.readouterr().err


def test_cli_barrier_committee_is_the_mean_and_spread_of_its_members(tmp_path, monkeypatch,
                                                                     capsys):
    """Several models: each runs the NEB it would run alone (its entry in ``members`` is
    the one-model output), and the reported barriers, dmu and dalpha are their mean with
    the sample standard deviation beside them."""
    import json

    import ase.io

    from fieldforce.cli.main import main as cli_main
    from fieldforce.models import load_model, save_model

    models = _cli_inputs(tmp_path, seeds=(0, 1))
    args = ["--initial", str(tmp_path / "a.xyz"), "--final", str(tmp_path / "b.xyz"),
            "--images", "3", "--steps", "3", "--fields", "-0.5", "0", "0.5"]
    # three optimizer steps converge nothing: the bands are declared converged, except the
    # second model's at +0.5 V/Å, which the committee must then leave out of that mean
    import fieldforce.cli.surface as surface

    real = surface._barrier_of

    def declared(path, *rest, **kw):
        result, entry = real(path, *rest, **kw)
        result.converged = [True, True, path.name != "model1.pt"]
        entry["converged"] = result.converged
        return result, entry

    monkeypatch.setattr(surface, "_barrier_of", declared)
    assert cli_main(["analyze", "barrier", str(models[1]), *args,
                     "--json", str(tmp_path / "one.json")]) == 0
    assert cli_main(["analyze", "barrier", *map(str, models), *args, "--json",
                     str(tmp_path / "two.json"), "--plot", str(tmp_path / "two.png"),
                     "--paths", str(tmp_path / "bands.xyz")]) == 0
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["models"] == [str(m) for m in models] and len(two["members"]) == 2
    member = two["members"][1]
    for key in ("barriers", "dmu", "dalpha", "energies", "saddle_index"):
        np.testing.assert_allclose(member[key], one[key], rtol=1e-6, atol=1e-9)
    table = np.array([m["barriers"] for m in two["members"]])
    assert not np.allclose(table[0], table[1])  # two different models
    np.testing.assert_allclose(two["barriers"][:2], table[:, :2].mean(axis=0))
    np.testing.assert_allclose(two["barriers_std"][:2],
                               np.abs(table[0, :2] - table[1, :2]) / np.sqrt(2))
    # the unconverged band is left out: the first model alone, no spread
    assert two["barriers"][2] == pytest.approx(table[0, 2]) and two["barriers_std"][2] is None
    assert two["members_converged"] == [2, 2, 1] and two["converged"] == [True, True, False]
    dmu = [m["dmu"] for m in two["members"]]
    assert two["dmu"] == pytest.approx(np.mean(dmu))
    assert two["dmu_std"] == pytest.approx(abs(dmu[0] - dmu[1]) / np.sqrt(2))
    bands = ase.io.read(tmp_path / "bands.xyz", ":")
    assert len(bands) == 2 * 3 * 3 and {a.info["member"] for a in bands} == {0, 1}
    assert (tmp_path / "two.png").stat().st_size > 1000
    # a member whose NEB fails (its path leaves its data) is named and left out of the mean
    from fieldforce.errors import DataError

    def collapsing(path, *rest, **kw):
        if path.name == "model2.pt":
            raise DataError("NEB image 1 at F = -0.5 V/Å: atoms 0 and 12 came to 1.1 Å")
        return declared(path, *rest, **kw)

    monkeypatch.setattr(surface, "_barrier_of", collapsing)
    save_model(load_model(models[0]), tmp_path / "model2.pt")
    assert cli_main(["analyze", "barrier", str(models[0]), str(tmp_path / "model2.pt"),
                     str(models[1]),
                     *args, "--json", str(tmp_path / "three.json"),
                     "--paths", str(tmp_path / "bands3.xyz")]) == 0
    three = json.loads((tmp_path / "three.json").read_text())
    # the bands name the members that ran, not the position in the command line
    assert {(a.info["member"], a.info["model"]) for a in
            ase.io.read(tmp_path / "bands3.xyz", ":")} == {(0, str(models[0])),
                                                          (1, str(models[1]))}
    assert three["barriers"] == two["barriers"] and three["models"] == two["models"]
    assert three["failed"][0]["model"].endswith("model2.pt")
    assert "came to 1.1 Å" in three["failed"][0]["error"]
    assert cli_main(["analyze", "barrier", str(models[0]), str(tmp_path / "model2.pt"),
                     *args, "--json", str(tmp_path / "four.json")]) != 0
    assert "fewer than two are left" in capsys.readouterr().err


class SinkingAdatom(AdatomInField):
    """AdatomInField plus a spring pulling the adatom onto the surface atom below it with
    zero rest length: a model without repulsion, whose minimum is a collapsed structure."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.positions
        below = int(np.argmax(pos[:-1, 2]))
        d = pos[-1] - pos[below]
        self.results["energy"] += 200.0 * d @ d
        self.results["free_energy"] = self.results["energy"]
        self.results["forces"][-1] -= 400.0 * d
        self.results["forces"][below] += 400.0 * d


def test_a_collapsing_model_gives_one_clear_error_not_a_barrier():
    from fieldforce.errors import DataError

    path = slabs.hop_path("Cu(100)")
    with pytest.raises(DataError, match=r"initial state relaxed at F = \+0\.1 V/Å: atoms "
                                        r"\d+ \(Cu\) and \d+ \(Cu\) came to .* no repulsion"):
        field_barriers(SinkingAdatom, path[0], path[-1], [0.1], images=3, steps=200)
