"""The response model with kernel heads (``head: gpr``): the closed-form fit recovers a
model of its own form from that model's energies, forces, dipoles and polarizabilities
(with and without fields), the predictions are exactly equivariant, the uncertainties
grow away from the data, and the model file and ``fieldforce train`` carry it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from scipy.spatial.transform import Rotation

from fieldforce.data.batch import collate
from fieldforce.data.frame import Frame
from fieldforce.datasets import load_water
from fieldforce.errors import ConfigError
from fieldforce.models import KernelResponseModel, build_model, evaluate, load_model, save_model

pytest.importorskip("featomic.torch")

CONFIG = {"family": "response", "head": "gpr", "species": [1, 8],
          "descriptor": {"max_radial": 3, "max_angular": 2}, "sparse_points": 12,
          "response_sparse_points": 6}
TERMS = {"energy": 1.0, "forces": 1.0, "dipole": 1.0, "polarizability": 1.0}
ALL = {"energy_uncertainty", "dipole_uncertainty", "polarizability_uncertainty"}


@pytest.fixture(scope="module")
def frames():
    water = load_water()
    fields = [f for f in water if np.abs(f.efield).max() > 0]
    return (load_water("dimer")[:8] + load_water("trimer")[:3] + fields[:6]
            + load_water("monomer")[:3])


@pytest.fixture(scope="module")
def teacher(frames):
    model = build_model(CONFIG)
    model.fit(frames, TERMS)
    return model


def relabel(model, frames, at_field: bool = True):
    """The frames labelled by ``model``, at their own fields (or at zero field)."""
    batch = collate(frames)
    out = evaluate(model, batch, field=batch.field * float(at_field))  # [B, 3]: per structure
    labelled = []
    for s, frame in enumerate(frames):
        rows = batch.structure_index == s
        labels = {"efield": frame.efield * float(at_field),
                  "energy": float(out["energy"][s].detach()),
                  "forces": out["forces"][rows].detach().numpy(),
                  "dipole": out["dipole"][s].detach().numpy(),
                  "polarizability": out["polarizability"][s].detach().numpy()}
        labelled.append(Frame(frame.atoms.copy(), labels))
    return labelled


NOISE = {"energy_noise": 1e-6, "forces_noise": 1e-6, "dipole_noise": 1e-7,
         "polarizability_noise": 1e-7}


def test_forces_are_derivative_observations_of_the_kernel_energy(teacher, frames):
    """Forces made by a kernel model on the same sparse set lie in the span of the force
    design rows: fitted on forces alone with small noise, the model reproduces them on
    structures it never saw."""
    student = build_model({**CONFIG, **NOISE})
    student.fit(relabel(teacher, frames, at_field=False), {"forces": 1.0})
    assert torch.equal(student.sparse_invariant, teacher.sparse_invariant)
    batch = collate(load_water("trimer")[5:8] + load_water("dimer")[40:43])
    a, b = evaluate(teacher, batch), evaluate(student, batch)
    assert a["forces"].abs().max() > 0.1
    assert torch.allclose(b["forces"], a["forces"], atol=1e-7)


def test_dipoles_at_a_field_carry_the_induced_term(teacher, frames):
    """Dipoles at a field are sums of mu_i + alpha_i E_i, polarizabilities sums of
    alpha_i: the teacher's labels are reproduced on the training frames (the atomic
    split is not identifiable from sums, so held-out frames are not a test of this);
    a fit that dropped alpha E from the design could not match the frames in fields."""
    data = relabel(teacher, frames)
    student = build_model({**CONFIG, **NOISE})
    student.fit(data, {"dipole": 1.0, "polarizability": 1.0})
    batch = collate(data)
    out = evaluate(student, batch, forces=False)  # at the frames' own fields
    for name in ("dipole", "polarizability"):
        assert torch.allclose(out[name], batch.labels[name], atol=1e-6), name
    induced = torch.einsum("sab,sb->sa", batch.labels["polarizability"], batch.field)
    assert induced.abs().max() > 1e-3  # the field frames' induced dipoles matter
    # the whole fit: energies at the fields (field terms removed, then U0) and forces
    student = build_model({**CONFIG, **NOISE})
    student.fit(data, TERMS)
    out = evaluate(student, batch)
    assert torch.allclose(out["energy"], batch.labels["energy"], atol=1e-3)
    assert torch.allclose(out["forces"], batch.labels["forces"], atol=1e-2)


def test_predictions_are_equivariant_and_forces_are_gradients(teacher, frames):
    batch = collate(frames[8:11])
    rot = torch.tensor(Rotation.random(random_state=5).as_matrix())
    field = torch.tensor([0.03, -0.05, 0.08], dtype=torch.float64)
    a = evaluate(teacher, batch, field=field, requests=ALL)
    b = evaluate(teacher, batch.with_positions(batch.positions @ rot.T + 1.5),
                 field=field @ rot.T, requests=ALL)
    assert torch.allclose(a["energy"], b["energy"], atol=1e-10)
    assert torch.allclose(b["forces"], a["forces"] @ rot.T, atol=1e-9)
    assert torch.allclose(b["dipole"], a["dipole"] @ rot.T, atol=1e-10)
    assert torch.allclose(b["polarizability"], rot @ a["polarizability"] @ rot.T, atol=1e-10)
    assert torch.allclose(a["energy_uncertainty"], b["energy_uncertainty"], rtol=1e-8)
    assert torch.allclose(b["dipole_uncertainty"].norm(dim=-1),
                          a["dipole_uncertainty"].norm(dim=-1), rtol=1e-8)  # sqrt tr cov
    # the projected-weight mean path equals the explicit kernels
    from fieldforce.models.kernels import normalise

    feats = teacher.features(batch.positions, batch.numbers, batch.cell, batch.pbc,
                             batch.structure_index)
    species = teacher.species_index(batch.numbers)
    _, k1, _ = teacher._response_kernels(feats, normalise(feats["invariant"]), species)
    mu = torch.einsum("iamb,mb->ia", k1, teacher.dipole_weights)
    assert torch.allclose(batch.sum_per_structure(mu), a["permanent_dipole"], atol=1e-12)
    assert "energy_uncertainty" not in evaluate(teacher, batch)  # only on request
    # forces: central differences of the energy at the field
    one = collate(frames[8:9])
    x = one.positions.clone()
    step = 1e-4
    for atom, axis in ((0, 2), (4, 0)):
        energies = []
        for sign in (1, -1):
            moved = x.clone()
            moved[atom, axis] += sign * step
            energies.append(float(evaluate(teacher, one.with_positions(moved), field=field,
                                           forces=False)["energy"][0]))
        fd = -(energies[0] - energies[1]) / (2 * step)
        force = float(evaluate(teacher, one, field=field)["forces"][atom, axis])
        assert force == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_uncertainty_and_extrapolation_grow_away_from_the_data(teacher, frames):
    inside = evaluate(teacher, collate(frames[:3]), requests=ALL)
    squeezed = frames[0].atoms.copy()
    squeezed.positions *= 0.7  # a dimer compressed by 30 %
    outside = evaluate(teacher, collate([Frame(squeezed, {})]), requests=ALL)
    assert outside["extrapolation"].max() > 3 * inside["extrapolation"].max()
    assert outside["energy_uncertainty"][0] > 3 * inside["energy_uncertainty"].max()
    assert inside["extrapolation"].max() < KernelResponseModel.extrapolation_threshold


def test_the_model_file_and_train_carry_the_kernel_heads(teacher, frames, tmp_path):
    path = save_model(teacher, tmp_path / "gpr.pt")
    loaded = load_model(path)
    assert isinstance(loaded, KernelResponseModel)
    batch = collate(frames[:4])
    a, b = evaluate(teacher, batch, requests=ALL), evaluate(loaded, batch, requests=ALL)
    for name in ("energy", "forces", "dipole", "energy_uncertainty", "dipole_uncertainty"):
        assert torch.equal(a[name], b[name])
    with pytest.raises(ConfigError, match="no 'gpr' heads"):
        build_model({"family": "latent", "head": "gpr", "species": [1, 8]})
    # fieldforce train: a closed-form fit, no epochs
    from fieldforce.cli.main import main
    from fieldforce.data.io import write_frames

    write_frames(frames, tmp_path / "data.xyz")
    config = {"data": {"train": str(tmp_path / "data.xyz"), "valid_fraction": 0.2,
                       "test_fraction": 0.0},
              "model": {**CONFIG, "folds": 2}, "output": str(tmp_path / "run")}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "train.yaml"), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"energy", "forces", "dipole", "polarizability"} <= set(metrics["valid"])
    # uncertainties scaled on the validation set: there the RMS z-score is 1
    scales = metrics["fit"]["uncertainty_scales_from_validation"]
    assert set(scales) == {"energy", "dipole", "polarizability", "forces"}
    model = load_model(tmp_path / "run" / "model.pt")
    for name in scales:
        z = model.zscores(load_frames_of(config, tmp_path), [name])[name]
        assert float(z.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-6)
    for name in ("energy", "forces", "dipole", "polarizability"):
        entry = metrics["valid"][name]["calibration"]
        assert 0 <= entry["within_1sigma"] <= entry["within_2sigma"] <= 1
    assert (tmp_path / "run" / "calibration_valid_dipole.png").exists()


def load_frames_of(config, tmp_path):
    """The validation frames of a training run's config."""
    from fieldforce.training import load_config
    from fieldforce.training.sources import split_data

    _, valid, _ = split_data(load_config(tmp_path / "train.yaml"))
    return valid


def test_calibration_numbers_of_gaussian_errors():
    from fieldforce.training.evaluation import calibration

    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.1, 2.0, size=(20000, 3))
    ref = rng.normal(size=sigma.shape)
    c = calibration(ref + sigma * rng.normal(size=sigma.shape), ref, sigma)
    assert c["within_1sigma"] == pytest.approx(0.6827, abs=0.01)
    assert c["within_2sigma"] == pytest.approx(0.9545, abs=0.005)
    assert c["spearman"] > 0.3  # larger sigma, larger errors (0.48 for this spread)
    shuffled = calibration(ref + sigma * rng.normal(size=sigma.shape), ref,
                           rng.permutation(sigma))
    assert abs(shuffled["spearman"]) < 0.05
    overconfident = calibration(ref + sigma * rng.normal(size=sigma.shape), ref, sigma / 3)
    assert overconfident["within_1sigma"] < 0.35


def test_a_per_atom_field_array_is_refused_not_read_as_structure_fields(teacher, frames):
    batch = collate(frames[:2])
    with pytest.raises(ConfigError, match=r"\[B, 3\] \(one per structure, B = 2\); got "
                                          r"shape \(12, 3\)"):
        evaluate(teacher, batch, field=batch.field[batch.structure_index])


def test_force_uncertainty_is_the_posterior_spread_of_the_forces(teacher, frames):
    """On request (calculator property, eval), the standard deviation of -dU0/dr: with as
    many directions as sparse points it equals the exact diag(J cov(w) J^T)."""
    from fieldforce.simulation.calculator import FieldForceCalculator

    assert teacher.energy_factor.shape[0] <= teacher.force_factor.shape[1]  # full rank here
    batch = collate(frames[:2])
    out = evaluate(teacher, batch, requests={"forces_uncertainty"})
    positions = batch.positions.detach().requires_grad_(True)
    from fieldforce.models.kernels import normalise

    feats = teacher.features(positions, batch.numbers, batch.cell, batch.pbc,
                             batch.structure_index, equivariant=False)
    x = normalise(feats["invariant"])
    k = teacher._similarity(x, teacher.species_index(batch.numbers),
                            teacher.sparse_invariant, teacher.sparse_species).pow(teacher.zeta)
    columns = [torch.autograd.grad(k[:, m].sum(), positions, retain_graph=True)[0]
               for m in range(k.shape[1])]
    jacobian = torch.stack(columns, -1)  # [N, 3, M]
    covariance = teacher.energy_factor @ teacher.energy_factor.T
    exact = torch.einsum("nam,mp,nap->na", jacobian, covariance, jacobian).sqrt()
    scale = teacher.uncertainty_scales[3]
    assert torch.allclose(out["forces_uncertainty"], scale * exact, rtol=1e-8, atol=1e-12)
    assert "forces_uncertainty" not in evaluate(teacher, batch)  # only when asked for
    atoms = frames[0].atoms.copy()
    atoms.calc = FieldForceCalculator(teacher)
    sigma = atoms.calc.get_property("forces_uncertainty", atoms)
    assert sigma.shape == (len(atoms), 3) and (sigma > 0).all()


def test_md_trajectory_carries_the_uncertainties(teacher, frames, tmp_path):
    import ase.io

    from fieldforce.simulation.md import run_md

    save_model(teacher, tmp_path / "gpr.pt")
    ase.io.write(tmp_path / "start.xyz", frames[8].atoms)
    run_md({"structure": str(tmp_path / "start.xyz"), "model": str(tmp_path / "gpr.pt"),
            "output": str(tmp_path / "md"), "ensemble": "nve", "timestep_fs": 0.5,
            "steps": 6, "write_interval": 3, "field": {"type": "static",
                                                       "vector": [0, 0, 0.05]}},
           progress=False)
    last = ase.io.read(tmp_path / "md" / "trajectory.xyz", -1)
    assert last.arrays["forces_uncertainty"].shape == (len(last), 3)
    assert (last.arrays["forces_uncertainty"] > 0).all()
    assert last.info["energy_uncertainty"] > 0 and len(last.info["dipole_uncertainty"]) == 3
    log = (tmp_path / "md" / "md.log").read_text().splitlines()
    assert "max_energy_uncertainty" in log[0] and "max_dipole_uncertainty" in log[0]
    columns = log[0].split("(")[0].split()[1:]
    rows = [line.split() for line in log[1:] if not line.startswith("#")]
    assert all(len(r) == len(columns) for r in rows)
    assert float(rows[-1][columns.index("max_energy_uncertainty")]) > 0


def test_a_constant_atomic_polarizability_goes_to_the_baseline_exactly(frames):
    """alpha = sum_i c_Z I (a constant per species) is the isotropic baseline's, fitted
    to the traces before the kernel: held-out structures get it exactly (a kernel alone
    would only approximate a constant), with zero kernel weights left to fit. A model
    file written before the baseline existed loads with it at zero."""
    constant = {1: 0.03, 8: 0.11}  # e·Å²/V per atom
    data = [Frame(f.atoms.copy(), {"polarizability": np.eye(3) * sum(
        constant[int(z)] for z in f.atoms.numbers)}) for f in frames]
    model = build_model({**CONFIG, "polarizability_noise": 1e-6})
    model.fit(data, {"polarizability": 1.0})
    assert model.iso_weights.abs().max() < 1e-8
    held_out = load_water("trimer")[10:12] + load_water("monomer")[20:22]
    out = evaluate(model, collate(held_out), forces=False)
    expected = torch.tensor([sum(constant[int(z)] for z in f.atoms.numbers)
                             for f in held_out], dtype=torch.float64)
    assert torch.allclose(out["polarizability"], expected[:, None, None] * torch.eye(
        3, dtype=torch.float64), atol=1e-10)
    old = {k: v for k, v in model.state_dict().items() if k != "iso_baseline"}
    loaded = build_model(model.config)
    loaded.load_state_dict(old)
    assert torch.equal(loaded.iso_baseline, torch.zeros(2, dtype=torch.float64))
