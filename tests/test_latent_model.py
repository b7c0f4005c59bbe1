"""The latent-charge (LES) model: Born charges against exact limits and finite
differences, the acoustic sum rule, rotations, field forces against the enthalpy,
periodic forces, the charge constraint, the short-range switch, files, training,
evaluation, the calculator and configuration errors."""

import json

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from scipy.spatial.transform import Rotation

from fieldforce.data.batch import batch_from_atoms, collate
from fieldforce.data.frame import Frame
from fieldforce.electrostatics import batch_born_charges
from fieldforce.errors import ConfigError
from fieldforce.fields import PointChargeField
from fieldforce.models import LatentChargeModel, build_model, evaluate, load_model, save_model
from fieldforce.simulation.calculator import FieldForceCalculator
from finite_differences import position_derivative

SMALL = {"family": "latent", "descriptor": {"max_radial": 3, "max_angular": 2, "cutoff": 3.5},
         "hidden": [16], "species": [1, 8]}
TRICLINIC = np.array([[7.0, 0.0, 0.0], [1.2, 7.5, 0.0], [-0.8, 0.6, 7.2]])
FIELD = np.array([0.05, -0.08, 0.1])  # V/Å
EYE = torch.eye(3, dtype=torch.float64)


pytestmark = pytest.mark.usefixtures("one_thread")



def of_type(water, kind):
    return [f for f in water if f.atoms.info.get("config_type") == kind]


@pytest.fixture(scope="module")
def frames(water):
    return of_type(water, "dimer")[:6]


@pytest.fixture(scope="module")
def box(water) -> Frame:
    """Two water molecules in a triclinic periodic cell (neutral)."""
    trimer = of_type(water, "trimer")[0].atoms
    atoms = Atoms(trimer.numbers[:6], positions=trimer.positions[:6] + 1.0, cell=TRICLINIC,
                  pbc=True)
    atoms.wrap()
    return Frame(atoms)


@pytest.fixture(scope="module")
def model(frames):
    torch.manual_seed(0)
    m = build_model(SMALL)
    m.fit_statistics(frames)
    # random, not small, output layers: the charges depend strongly on the positions
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
        m.charge_unit.fill_(0.3)
    return m


def dimer_atoms(frames, k=0) -> Atoms:
    atoms = frames[k].atoms.copy()
    atoms.info = {}
    return atoms


def per_structure_sum(z, batch):
    return torch.zeros(batch.n_structures, 3, 3, dtype=z.dtype).index_add(
        0, batch.structure_index, z)


class SpeciesCharges(LatentChargeModel):
    """Charges fixed by species (-0.8 e on O, +0.4 e on H): independent of positions."""

    def latent_charges(self, h, batch, invariant=None):
        return torch.where(batch.numbers == 8, -0.8, 0.4).to(h)


def test_born_charges_of_position_independent_charges_are_q_times_identity(frames, box):
    m = SpeciesCharges(SMALL)
    m.fit_statistics(frames)
    batch = collate([frames[0], box])
    out = evaluate(m, batch, born_charges=True)
    expected = out["charges"].detach()[:, None, None] * EYE
    assert torch.allclose(out["born_charges"], expected, atol=1e-12)
    # the batched function on its own, fixed charges, isolated + triclinic periodic
    positions = batch.positions.clone().requires_grad_(True)
    q = torch.linspace(-1, 1, 12, dtype=torch.float64)
    q = q - batch.sum_per_structure(q)[batch.structure_index] / 6  # neutral structures
    z = batch_born_charges(positions, q, batch.cell, batch.pbc, batch.structure_index)
    assert torch.allclose(z, q[:, None, None] * EYE, atol=1e-12)


def test_acoustic_sum_rule_and_the_charge_constraint(model, frames, box):
    charged = Frame(frames[1].atoms.copy(), {"total_charge": 1.0})
    batch = collate([frames[0], box, charged])
    out = evaluate(model, batch, born_charges=True)
    totals = batch.sum_per_structure(out["charges"].detach())
    assert torch.allclose(totals, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
                          atol=1e-12)
    assert out["charges"].abs().max() > 0.05  # not trivially zero
    sums = per_structure_sum(out["born_charges"], batch)
    assert torch.allclose(sums, totals[:, None, None] * EYE, atol=1e-10)
    # without the option: exact for isolated structures (the charges move with the
    # molecule), only approximate for the periodic phase form
    positions = batch.positions.detach().requires_grad_(True)
    raw_out = model(batch.with_positions(positions), torch.zeros_like(positions))
    raw = batch_born_charges(positions, raw_out["charges"], batch.cell, batch.pbc,
                             batch.structure_index)
    raw_sums = per_structure_sum(raw, batch)
    assert torch.allclose(raw_sums[0], torch.zeros(3, 3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(raw_sums[2], EYE, atol=1e-10)
    assert raw_sums[1].abs().max() > 1e-3


def test_rotation_equivariance(model, frames):
    batch = collate(frames[2:3])
    rot = torch.tensor(Rotation.random(random_state=5).as_matrix())
    shift = torch.tensor([0.4, -2.0, 1.1], dtype=torch.float64)
    a = evaluate(model, batch, born_charges=True)
    b = evaluate(model, batch.with_positions(batch.positions @ rot.T + shift), born_charges=True)
    assert torch.allclose(a["energy"], b["energy"], rtol=1e-12)
    assert torch.allclose(a["charges"], b["charges"], atol=1e-12)
    assert torch.allclose(b["dipole"], a["dipole"] @ rot.T, atol=1e-10)  # neutral: no shift
    assert torch.allclose(b["born_charges"], rot @ a["born_charges"] @ rot.T, atol=1e-10)
    assert torch.allclose(b["forces"], a["forces"] @ rot.T, atol=1e-9)
    # permutation of the atoms
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    p = batch.with_positions(batch.positions[perm])
    p.numbers = batch.numbers[perm]
    c = evaluate(model, p, born_charges=True)
    assert torch.allclose(c["energy"], a["energy"], rtol=1e-12)
    assert torch.allclose(c["charges"], a["charges"][perm], atol=1e-12)
    assert torch.allclose(c["born_charges"], a["born_charges"][perm], atol=1e-10)


def test_born_charges_are_the_dipole_derivative_and_batching_changes_nothing(
        model, frames, box):
    atoms = dimer_atoms(frames, 3)
    z = evaluate(model, batch_from_atoms(atoms), born_charges=True)["born_charges"]

    def dipole(moved):
        return evaluate(model, batch_from_atoms(moved), forces=False)["dipole"][0].detach()

    for atom, axis in ((0, 0), (2, 1), (4, 2)):
        fd = position_derivative(dipole, atoms, atom, axis, 1e-5)
        np.testing.assert_allclose(z[atom, :, axis].numpy(), fd, rtol=1e-6, atol=1e-8)
    # batched Born charges of [dimer, box] equal the single-structure ones
    both = evaluate(model, collate([frames[3], box]), born_charges=True)["born_charges"]
    single = evaluate(model, collate([box]), born_charges=True)["born_charges"]
    assert torch.allclose(both[:6], z, atol=1e-12)
    assert torch.allclose(both[6:], single, atol=1e-12)


def test_uniform_field_forces_are_minus_the_enthalpy_gradient(model, frames):
    atoms = dimer_atoms(frames, 1)
    field = torch.tensor(FIELD)
    batch = batch_from_atoms(atoms)
    out = evaluate(model, batch, field=field, born_charges=True)
    enthalpy = out["energy_zero_field"] - out["dipole"] @ field
    assert torch.allclose(out["energy"], enthalpy, atol=1e-12)
    # the total force is the zero-field force plus Z*^T E
    zero = evaluate(model, batch)
    assert torch.allclose(out["forces"], zero["forces"] + out["born_charges"].transpose(1, 2)
                          @ field, atol=1e-10)

    def energy(moved):
        return float(evaluate(model, batch_from_atoms(moved), field=field,
                              forces=False)["energy"].detach())

    for atom, axis in ((0, 2), (1, 0), (5, 1)):
        fd = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-7)


def test_periodic_forces_are_minus_the_energy_gradient_and_field_forces_are_born(model, box):
    atoms = box.atoms.copy()
    batch = batch_from_atoms(atoms)
    out = evaluate(model, batch)
    assert out["energy_long_range"].abs().max() > 1e-3

    def energy(moved):
        return float(evaluate(model, batch_from_atoms(moved), forces=False)["energy"].detach())

    for atom, axis in ((0, 0), (3, 2), (5, 1)):
        fd = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-7)
    # stress: (1/V) dU/d(strain), the Ewald sum's cell dependence included
    stress = evaluate(model, batch, forces=False, stress=True)["stress"][0]
    volume = abs(np.linalg.det(TRICLINIC))
    for i, j in ((0, 0), (1, 2)):
        values = []
        for sign in (1, -1):
            strained = atoms.copy()
            deform = np.eye(3)
            deform[i, j] += sign * 1e-5
            strained.set_cell(TRICLINIC @ deform, scale_atoms=True)
            values.append(energy(strained))
        fd = (values[0] - values[1]) / 2e-5 / volume
        assert float(stress[i, j]) == pytest.approx(fd, rel=1e-5, abs=1e-8)
    # in a field: Z*^T E with the phase-form Born charges (sum rule on), energy - E.VP
    field = torch.tensor(FIELD)
    on = evaluate(model, batch, field=field, born_charges=True)
    assert torch.allclose(on["forces"], out["forces"] + on["born_charges"].transpose(1, 2)
                          @ field, atol=1e-10)
    assert torch.allclose(on["forces"].sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(on["energy"], out["energy"] - volume * on["polarization"] @ field,
                          atol=1e-10)
    assert torch.allclose(on["dipole"], volume * on["polarization"], atol=1e-12)


def test_short_range_switch_keeps_the_backbone(model, frames, tmp_path):
    short = build_model({**SMALL, "long_range": False})
    short.load_state_dict({k: v for k, v in model.state_dict().items()
                           if k.startswith("backbone.")})
    batch = collate(frames[:2])
    a, b = evaluate(model, batch), evaluate(short, batch, field=torch.tensor(FIELD))
    assert set(b) == {"energy", "energy_short_range", "atomic_energies", "atom_field", "forces",
                      "extrapolation"}
    assert torch.allclose(b["energy"], a["energy_short_range"], atol=1e-12)
    assert not short.has_charges
    with pytest.raises(ValueError, match="predicts charges"):
        evaluate(short, batch, born_charges=True)
    again = load_model(save_model(short, tmp_path / "short.pt"))
    assert torch.equal(evaluate(again, batch)["forces"], b["forces"])


def test_save_load_round_trip(model, frames, box, tmp_path):
    again = load_model(save_model(model, tmp_path / "latent.pt"))
    assert isinstance(again, LatentChargeModel) and again.config == model.config
    batch = collate([frames[0], box])
    field = torch.tensor(FIELD)
    a = evaluate(model, batch, field=field, born_charges=True)
    b = evaluate(again, batch, field=field, born_charges=True)
    for key in ("energy", "forces", "charges", "dipole", "polarization", "born_charges"):
        assert torch.equal(a[key], b[key]), key


@pytest.mark.filterwarnings("ignore:second derivatives with respect to positions")
def test_born_charge_loss_parameter_gradient_matches_finite_differences(model, frames):
    """Training on Born charges differentiates Z* = d(sum q r)/dr with respect to the
    weights (create_graph through featomic): compare with finite differences."""
    batch = collate(frames[4:6])

    def loss():
        out = evaluate(model, batch, forces=False, born_charges=True, create_graph=True)
        return ((out["born_charges"] - batch.labels["born_charges"]) ** 2).sum()

    weight, index, h = model.charge_head.weight, (0, 5), 1e-5
    grad = torch.autograd.grad(loss(), weight)[0][index]
    values = []
    for step in (h, -2 * h, h):
        with torch.no_grad():
            weight[index] += step
        values.append(float(loss().detach()))
    assert float(grad) == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-6)


def test_training_decreases_the_loss_and_eval_scores_born_charges(water, tmp_path):
    from fieldforce.cli.main import main
    from fieldforce.data.io import write_frames
    from fieldforce.training import load_config

    write_frames(of_type(water, "dimer")[:16], tmp_path / "train.xyz")
    cfg = {"data": {"train": "train.xyz", "valid_fraction": 0.25},
           "model": {k: v for k, v in SMALL.items() if k != "species"},
           "training": {"max_epochs": 3, "batch_size": 6, "learning_rate": 0.01},
           "output": "run"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # energies and forces only, by default
    assert load_config(path)["training"]["loss_weights"] == {"energy": 1.0, "forces": 100.0}
    cfg["training"]["loss_weights"] = {"energy": 1.0, "forces": 10.0, "born_charges": 1.0}
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--no-progress"]) == 0
    history = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert "valid_rmse_born_charges" in history[-1]
    assert main(["eval", str(tmp_path / "run" / "model.pt"), str(tmp_path / "train.xyz"),
                 "--json", str(tmp_path / "e.json")]) == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    assert {"energy", "forces", "dipole", "born_charges"} <= set(scores)
    assert scores["born_charges"]["unit"] == "e" and scores["born_charges"]["n"] == 16 * 6
    assert set(scores["born_charges"]) == {"rmse", "mae", "rrmse", "unit", "n"}


def test_calculator_properties_and_field_forces(model, frames, box):
    atoms = dimer_atoms(frames, 2)
    calc = FieldForceCalculator(model, efield=FIELD)
    atoms.calc = calc
    forces = atoms.get_forces()
    charges = atoms.get_charges()
    assert charges.shape == (6,) and abs(charges.sum()) < 1e-12
    np.testing.assert_allclose(atoms.get_dipole_moment(), charges @ atoms.positions, atol=1e-12)
    born = calc.get_born_charges()
    assert born.shape == (6, 3, 3)
    zero = FieldForceCalculator(model)
    np.testing.assert_allclose(forces, zero.get_forces(atoms) + np.einsum("iab,a->ib", born,
                                                                           FIELD), atol=1e-10)
    with pytest.raises(Exception, match="not present"):
        calc.get_property("polarization", atoms)
    periodic = box.atoms.copy()
    periodic.calc = FieldForceCalculator(model, efield=FIELD)
    assert periodic.calc.get_property("polarization", periodic).shape == (3,)
    assert np.abs(periodic.get_forces().sum(0)).max() < 1e-10
    with pytest.raises(ConfigError, match="uniform fields only"):
        FieldForceCalculator(model, efield=PointChargeField(1.0, [5.0, 0.0, 0.0]))


def test_nve_in_a_static_field_conserves_the_enthalpy(frames):
    """Isolated molecule: the forces are -d(U - E.M)/dr, so U - E.M + kinetic energy is
    conserved (untrained but unperturbed weights, a gentle energy scale)."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    torch.manual_seed(1)
    m = build_model(SMALL)
    m.fit_statistics(frames)
    with torch.no_grad():
        m.backbone.energy_scale.mul_(0.1)
        m.charge_unit.fill_(0.3)
    atoms = dimer_atoms(frames, 0)
    atoms.calc = FieldForceCalculator(m, efield=FIELD)
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(scale=0.5, size=(6, 3)) * np.sqrt(atoms.get_masses())[:, None])
    dyn = VelocityVerlet(atoms, timestep=0.25 * units.fs)
    totals, kinetic = [], []
    for _ in range(60):
        dyn.run(1)
        kinetic.append(atoms.get_kinetic_energy())
        totals.append(atoms.get_potential_energy() + kinetic[-1])
    assert np.ptp(kinetic) > 0.01
    assert np.ptp(totals) < 1e-3 * np.ptp(kinetic)


def test_bad_configs_give_one_clear_error():
    from fieldforce.training import load_config

    with pytest.raises(ConfigError, match="unknown key.*charge_widht"):
        build_model({**SMALL, "charge_widht": 1.0})
    with pytest.raises(ConfigError, match="charge_width': expected a number >= 0"):
        build_model({**SMALL, "charge_width": -0.5})
    with pytest.raises(ConfigError, match="method"):
        build_model({**SMALL, "method": "direct"})
    with pytest.raises(ConfigError, match="config.*charge_scale': expected a number > 0"):
        load_config({"data": {"train": "x.xyz"}, "output": "run",
                     "model": {"family": "latent", "charge_scale": 0}})
    with pytest.raises(ConfigError, match="charge_unit': expected a number > 0"):
        build_model({**SMALL, "charge_unit": -1.0})


def test_charge_unit_is_taken_from_labels_unless_fixed(frames):
    """Automatic charge unit: the RMS isotropic DFT Born charge of the data; a configured
    ``charge_unit`` is kept."""
    z = np.concatenate([f.labels["born_charges"] for f in frames])
    expected = np.sqrt(np.mean(np.trace(z, axis1=1, axis2=2) ** 2 / 9.0))
    auto = build_model(SMALL)
    auto.fit_statistics(frames)
    assert float(auto.charge_unit) == pytest.approx(expected, rel=1e-10)
    fixed = build_model({**SMALL, "charge_unit": 0.7})
    fixed.fit_statistics(frames)
    assert float(fixed.charge_unit) == 0.7 and fixed.config["charge_unit"] == 0.7


def test_labels_no_loss_uses_leave_the_model_alone_unless_asked(frames, tmp_path):
    """Born-charge labels in the data but no Born-charge loss: the charge unit stays the
    default (issue 17: the unit taken from unused labels made the inferred Born charges
    worse than zero); ``training.unused_labels: statistics`` lets them set it."""
    from fieldforce.models.latent import DEFAULT_CHARGE_UNIT
    from fieldforce.training import Trainer, load_config

    z = np.concatenate([f.labels["born_charges"] for f in frames])
    from_labels = np.sqrt(np.mean(np.trace(z, axis1=1, axis2=2) ** 2 / 9.0))
    assert abs(from_labels - DEFAULT_CHARGE_UNIT) > 0.01
    units = {}
    for choice in ("ignore", "statistics"):
        config = load_config({"data": {"train": "unused.xyz"},
                              "output": str(tmp_path / choice),
                              "model": {k: v for k, v in SMALL.items() if k != "species"},
                              "training": {"max_epochs": 1, "unused_labels": choice}})
        trainer = Trainer(config, progress=False, data=(frames[:4], frames[4:6], []))
        units[choice] = float(trainer.model.charge_unit)
        assert "born_charges" in frames[0].labels  # the caller's frames are untouched
    assert units["ignore"] == DEFAULT_CHARGE_UNIT
    assert units["statistics"] == pytest.approx(np.sqrt(np.mean(np.concatenate(
        [np.trace(f.labels["born_charges"], axis1=1, axis2=2) ** 2 / 9.0
         for f in frames[:4]]))), rel=1e-10)


def test_the_charge_sign_follows_the_data_or_the_electronegativity_convention(model, frames):
    """At zero field, energies and forces cannot tell q from -q: ``settle`` makes oxygen
    negative (the charges anticorrelate with electronegativity) by negating the head, which
    leaves energies and forces exactly unchanged; data that fix the sign (dipole labels,
    frames in a field) are left alone, and the config says which applied."""
    import copy

    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    zero = [Frame(f.atoms, {k: v for k, v in f.labels.items() if k != "efield"})
            for f in frames]
    batch = collate(zero)
    oxygen = batch.numbers == 8
    for sign in (1.0, -1.0):
        m = copy.deepcopy(model)
        with torch.no_grad():
            m.charge_head.weight.mul_(sign)
            m.charge_head.bias.mul_(sign)
        before = evaluate(m, batch)
        settled = m.settle(zero, ["energy", "forces"])
        after = evaluate(m, batch)
        assert float(after["charges"].detach()[oxygen].mean()) < 0
        assert settled["negated"] == bool(before["charges"].detach()[oxygen].mean() > 0)
        assert m.config["charge_sign"].startswith("convention: charges anticorrelated")
        assert "of O, the most electronegative" in m.config["charge_sign"]
        torch.testing.assert_close(after["energy"], before["energy"], rtol=0, atol=1e-12)
        torch.testing.assert_close(after["forces"], before["forces"], rtol=0, atol=1e-12)
    m = copy.deepcopy(model)
    field = [Frame(f.atoms, {**f.labels, "efield": np.array([0, 0, 0.1])}) for f in frames]
    assert m.settle(field, ["energy", "forces"]) == {"charge_sign": "data: frames in a field"}
    assert m.settle(zero, ["energy", "dipole"])["charge_sign"] == "data: the dipole labels"
    torch.testing.assert_close(m.charge_head.weight, model.charge_head.weight)


def test_the_sign_convention_is_a_vote_of_every_atom_not_of_one_rare_species(monkeypatch):
    """Twenty water molecules with O negative and one HF molecule whose F came out slightly
    positive: electronegativity-weighted charges of all atoms keep the sign (O negative), where
    following the single most electronegative species (F, two atoms) would flip it."""
    import fieldforce.models.derivatives as derivatives
    from fieldforce.models.learned_charges import settle_charge_sign

    charge_of = {8: -0.6, 1: 0.3}
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    hf = Atoms("HF", positions=[[0, 0, 0], [0.92, 0, 0]])
    frames = [Frame(water.copy(), {"energy": 0.0}) for _ in range(20)]
    frames.append(Frame(hf, {"energy": 0.0}))

    def fake_evaluate(model, batch, forces=True):
        numbers = batch.numbers.tolist()
        charges = [charge_of.get(z, 0.0) for z in numbers]
        for i, z in enumerate(numbers):  # the HF molecule: F +0.05, its H -0.05
            if z == 9:
                charges[i], charges[i - 1] = 0.05, -0.05
        return {"charges": torch.tensor(charges, dtype=torch.float64)}

    monkeypatch.setattr(derivatives, "evaluate", fake_evaluate)

    class Holder:
        config: dict = {}

    calls = []
    holder = Holder()
    settled = settle_charge_sign(holder, frames, ["energy", "forces"], lambda: calls.append(1))
    assert settled["negated"] is False and not calls
    assert "of F, the most electronegative species, +0.05 e" in holder.config["charge_sign"]
    charge_of.update({8: 0.6, 1: -0.3})  # the mirror solution is negated
    settled = settle_charge_sign(holder, frames, ["energy", "forces"], lambda: calls.append(1))
    assert settled["negated"] is True and calls == [1]


def test_the_long_range_force_share_is_the_coulomb_energys_force(model, frames):
    """``long_range_force_share``: the force of the Coulomb part against central
    differences of ``energy_long_range`` (zero field), over the RMS of the force labels."""
    from fieldforce.models.learned_charges import long_range_force_share

    zero = [Frame(f.atoms, {k: v for k, v in f.labels.items() if k != "efield"})
            for f in frames[:1]]
    atoms = dimer_atoms(zero)

    def long_energy(moved):
        return float(evaluate(model, batch_from_atoms(moved), forces=False)
                     ["energy_long_range"].detach()[0])

    fd = np.array([[-position_derivative(long_energy, atoms, i, a, 1e-4) for a in range(3)]
                   for i in range(len(atoms))])
    share = long_range_force_share(model, zero)
    assert share["long_range_force_rms"] == pytest.approx(np.sqrt(np.mean(fd ** 2)), rel=1e-5)
    labels = np.asarray(zero[0].labels["forces"])
    assert share["force_rms"] == pytest.approx(np.sqrt(np.mean(labels ** 2)), rel=1e-12)
    assert share["long_range_force_share"] == pytest.approx(
        share["long_range_force_rms"] / share["force_rms"])
    assert share["long_range_force_rms"] > 1e-3  # the random model's charges are not small


def test_undetermined_charges_are_reported_when_only_the_convention_fixed_them(model, frames):
    """Below the threshold share the warning names what is not determined; above it, or
    for a short-range model (no long-range part), nothing is said."""
    import warnings

    from fieldforce.models.learned_charges import undetermined_charges_warning

    zero = [Frame(f.atoms, {k: v for k, v in f.labels.items() if k != "efield"})
            for f in frames]
    with pytest.warns(UserWarning, match="not determined by its data"):
        share = undetermined_charges_warning(model, zero, threshold=1e9)
    assert share["long_range_force_share"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert undetermined_charges_warning(model, zero, threshold=0.0)
        short = build_model({**SMALL, "long_range": False})
        short.fit_statistics(frames)
        assert undetermined_charges_warning(short, zero) == {}


def test_training_on_a_single_frame_stays_finite(frames, tmp_path):
    """One training frame has no energy spread: the loss must not become NaN."""
    from fieldforce.training import Trainer, load_config

    config = load_config({"data": {"train": "unused.xyz"}, "output": str(tmp_path / "run"),
                          "model": {k: v for k, v in SMALL.items() if k != "species"},
                          "training": {"max_epochs": 2, "batch_size": 1}})
    trainer = Trainer(config, progress=False, data=(frames[:1], frames[1:2], []))
    trainer.fit()
    assert all(np.isfinite(h["train_loss"]) for h in trainer.history)


def test_training_reports_the_charges_share_of_the_forces_when_the_convention_fixed_them(
        frames, tmp_path):
    """Zero-field energies and forces only: metrics.json says the sign came from the
    convention and how much of the training forces the charges carry."""
    import json
    import warnings

    from fieldforce.training import Trainer, load_config

    zero = [Frame(f.atoms, {k: v for k, v in f.labels.items() if k != "efield"})
            for f in frames]
    config = load_config({"data": {"train": "unused.xyz"}, "output": str(tmp_path / "run"),
                          "model": {k: v for k, v in SMALL.items() if k != "species"},
                          "training": {"max_epochs": 2, "batch_size": 2}})
    trainer = Trainer(config, progress=False, data=(zero[:4], zero[4:], []))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit()
    settled = json.loads((tmp_path / "run" / "metrics.json").read_text())["settled"]
    assert settled["charge_sign"].startswith("convention")
    assert 0 < settled["long_range_force_share"] == pytest.approx(
        settled["long_range_force_rms"] / settled["force_rms"])


def test_field_force_from_the_projected_directions_equals_the_full_born_charges(model, frames,
                                                                                box):
    """Z*ᵀE needs only the lattice directions the field projects on (two backward passes
    instead of six for a field along a cell axis); in a triclinic cell or along a diagonal
    all of them: either way the force is the full Born charges' contraction."""
    orthorhombic = box.atoms.copy()
    orthorhombic.set_cell(np.diag([6.0, 6.5, 7.0]), scale_atoms=False)
    orthorhombic.wrap()
    batch = collate([frames[0], box, Frame(orthorhombic)])
    for field in ([0.0, 0.0, 0.2], [0.1, -0.05, 0.2]):
        e = torch.tensor(field, dtype=torch.float64)
        atom_field = e.expand(batch.positions.shape[0], 3)
        positions = batch.positions.detach().requires_grad_(True)
        out = model(batch.with_positions(positions), atom_field)
        forces = model.extra_forces(batch.with_positions(positions), positions, atom_field,
                                    out)
        full = batch_born_charges(positions, out["charges"], batch.cell, batch.pbc,
                                  batch.structure_index, total_charge=batch.total_charge,
                                  acoustic_sum_rule=True)
        periodic = batch.pbc.any(dim=1)[batch.structure_index]
        expected = torch.einsum("nab,a->nb", full, e) * periodic[:, None]
        assert forces.abs().max() > 1e-3
        assert torch.allclose(forces, expected, atol=1e-12)


def test_a_separate_charge_network_keeps_every_derivative_and_the_sign_rule(frames, box,
                                                                             tmp_path):
    """``charge_network: separate`` (an MLP + a linear path on the standardised
    descriptors and the species, as the reference LES code): field forces minus the
    enthalpy gradient, Born charges the dipole derivative, the sign convention negates
    the whole network (energies and forces unchanged), and the file round trip."""
    import copy

    torch.manual_seed(1)
    m = build_model({**SMALL, "charge_network": "separate", "charge_hidden": [8]})
    m.fit_statistics(frames)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
        m.charge_unit.fill_(0.3)
    assert not hasattr(m.backbone, "charge_net") and m.charge_head.in_features == (
        m.backbone.features.n_invariant + 2)
    atoms = dimer_atoms(frames, 2)
    field = torch.tensor(FIELD)
    out = evaluate(m, batch_from_atoms(atoms), field=field, born_charges=True)
    assert float(out["charges"].detach().abs().max()) > 0.05

    def energy(moved):
        return float(evaluate(m, batch_from_atoms(moved), field=field,
                              forces=False)["energy"].detach())

    def dipole(moved):
        return evaluate(m, batch_from_atoms(moved), forces=False)["dipole"][0].detach()

    for atom, axis in ((0, 2), (3, 0)):
        fd = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-7)
        fd = position_derivative(dipole, atoms, atom, axis, 1e-5)
        np.testing.assert_allclose(out["born_charges"][atom, :, axis].numpy(), fd,
                                   rtol=1e-6, atol=1e-8)
    zero = [Frame(f.atoms, {k: v for k, v in f.labels.items() if k != "efield"})
            for f in frames]
    batch = collate(zero)
    oxygen = batch.numbers == 8
    for flip in (False, True):
        trial = copy.deepcopy(m)
        if flip:
            trial.settle(zero, ["energy", "forces"])  # now O negative: flip it back by hand
            with torch.no_grad():
                for layer in (trial.charge_head, trial.charge_net[-1]):
                    layer.weight.neg_()
                    layer.bias.neg_()
        before = evaluate(trial, batch)
        trial.settle(zero, ["energy", "forces"])
        after = evaluate(trial, batch)
        assert float(after["charges"].detach()[oxygen].mean()) < 0
        assert torch.allclose(after["charges"].abs(), before["charges"].abs(), atol=1e-12)
        torch.testing.assert_close(after["energy"], before["energy"], rtol=0, atol=1e-12)
        torch.testing.assert_close(after["forces"], before["forces"], rtol=0, atol=1e-12)
    again = load_model(save_model(m, tmp_path / "separate.pt"))
    batch = collate([frames[0], box])
    a = evaluate(m, batch, field=field, born_charges=True)
    b = evaluate(again, batch, field=field, born_charges=True)
    for key in ("energy", "forces", "charges", "born_charges"):
        assert torch.equal(a[key], b[key]), key
