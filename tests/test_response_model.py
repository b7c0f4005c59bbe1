"""The response model: symmetry, forces against finite differences with and without
fields, the field-derivative identities, save/load, training and its errors."""

import json

import pytest
import torch
import yaml
from scipy.spatial.transform import Rotation

from fieldforce.data.batch import collate
from fieldforce.datasets import load_water
from fieldforce.errors import ConfigError, DataError
from fieldforce.fields import PointChargeField
from fieldforce.models import build_model, evaluate, load_model, save_model

SMALL = {"descriptor": {"max_radial": 3, "max_angular": 2}, "hidden": [16], "channels": 4,
         "species": [1, 8]}


@pytest.fixture(scope="module")
def frames():
    return load_water("dimer")[:6] + load_water("trimer")[:2]


@pytest.fixture(scope="module")
def model(frames):
    torch.manual_seed(0)
    m = build_model(SMALL)
    m.fit_statistics(frames)
    # random, not zero, output layers: every term of the energy contributes
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


def test_energy_invariant_dipole_and_polarizability_equivariant(model, frames):
    batch = collate(frames[5:8])
    rot = torch.tensor(Rotation.random(random_state=3).as_matrix())
    shift = torch.tensor([0.7, -1.2, 2.0], dtype=torch.float64)
    field = torch.tensor([0.03, -0.05, 0.08], dtype=torch.float64)
    a = evaluate(model, batch, field=field)
    b = evaluate(model, batch.with_positions(batch.positions @ rot.T + shift), field=field @ rot.T)
    assert torch.allclose(a["energy"], b["energy"], rtol=1e-12, atol=1e-10)
    assert torch.allclose(b["dipole"], a["dipole"] @ rot.T, atol=1e-10)
    assert torch.allclose(b["polarizability"], rot @ a["polarizability"] @ rot.T, atol=1e-10)
    assert torch.allclose(b["forces"], a["forces"] @ rot.T, atol=1e-9)
    # permutation of the atoms of one structure
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    one = collate(frames[:1])
    p = one.with_positions(one.positions[perm])
    p.numbers = one.numbers[perm]
    c, d = evaluate(model, one, field=field), evaluate(model, p, field=field)
    assert torch.allclose(c["energy"], d["energy"], rtol=1e-12)
    assert torch.allclose(c["forces"][perm], d["forces"], atol=1e-10)
    # the response is not trivially zero
    assert a["dipole"].abs().max() > 1e-3 and a["polarizability"].abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["zero", "uniform", "non-uniform"])
def test_forces_are_minus_the_energy_gradient(model, frames, kind):
    batch = collate(frames[:1])
    field = {"zero": torch.zeros(3, dtype=torch.float64),
             "uniform": torch.tensor([0.0, 0.05, 0.1], dtype=torch.float64),
             "non-uniform": PointChargeField(2.0, [4.0, -3.0, 2.0])}[kind]
    forces = evaluate(model, batch, field=field)["forces"]

    def energy(pos):
        return float(evaluate(model, batch.with_positions(pos), field=field,
                              forces=False)["energy"].detach())

    h = 1e-5  # the random weights make U strongly curved: h = 1e-4 leaves 3e-6 relative
    for atom, axis in ((0, 0), (1, 2), (4, 1)):
        step = torch.zeros_like(batch.positions)
        step[atom, axis] = h
        fd = (energy(batch.positions + step) - energy(batch.positions - step)) / (2 * h)
        assert float(forces[atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-7)


def test_dipole_is_minus_the_field_derivative_of_the_energy(model, frames):
    batch = collate(frames[:2])
    field = torch.tensor([[0.02, 0.01, -0.03], [0.0, -0.04, 0.05]], dtype=torch.float64,
                         requires_grad=True)
    out = evaluate(model, batch, field=field, forces=False)
    grad = torch.autograd.grad(out["energy"].sum(), field, create_graph=True)[0]
    assert torch.allclose(-grad, out["dipole"], atol=1e-12)
    # and alpha = -d2U/dE2 (exact: U is quadratic in E)
    hess = torch.stack([torch.autograd.grad(-grad[0, a], field, retain_graph=True)[0][0]
                        for a in range(3)])
    assert torch.allclose(hess, out["polarizability"][0], atol=1e-12)


def test_save_load_round_trip(model, frames, tmp_path):
    path = save_model(model, tmp_path / "m.pt")
    again = load_model(path)
    batch = collate(frames[:3])
    field = torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    a, b = evaluate(model, batch, field=field), evaluate(again, batch, field=field)
    for key in ("energy", "forces", "dipole", "polarizability"):
        assert torch.equal(a[key], b[key])
    assert again.metadata["units"]["energy"] == "eV"
    with pytest.raises(DataError, match="not a fieldforce model file"):
        torch.save({"weights": 1}, tmp_path / "bad.pt")
        load_model(tmp_path / "bad.pt")


def test_an_old_file_keeps_its_descriptor_whatever_the_defaults(model, frames, tmp_path,
                                                                monkeypatch):
    """A model file from before a descriptor key existed loads with the value it was
    built with (the key's file default), even after the key's default changes; every key
    added since the first files has one."""
    from fieldforce.descriptors import DescriptorSettings

    first_files = {"cutoff", "smoothing_width", "density_width", "max_radial", "max_angular",
                   "species", "feature_scale"}
    added = set(DescriptorSettings().to_dict()) - first_files
    assert added == set(DescriptorSettings.file_defaults)
    payload = torch.load(save_model(model, tmp_path / "m.pt"), weights_only=False)
    for key in added:
        payload["config"]["descriptor"].pop(key)
    torch.save(payload, tmp_path / "old.pt")
    # a later default (the weighting on): the old file must not pick it up
    assert DescriptorSettings().radial_scaling is None
    monkeypatch.setitem(DescriptorSettings.__init__.__kwdefaults__, "radial_scaling",
                        [3.0, 6])
    assert DescriptorSettings().radial_scaling == [3.0, 6.0]
    assert load_model(tmp_path / "m.pt").config["descriptor"]["radial_scaling"] is None
    old = load_model(tmp_path / "old.pt")
    assert old.config["descriptor"]["radial_scaling"] is None
    batch = collate(frames[:3])
    assert torch.equal(evaluate(old, batch)["forces"], evaluate(model, batch)["forces"])


def _config(tmp_path, **training):
    from fieldforce.data.io import write_frames

    write_frames(load_water("dimer")[:24] + load_water("monomer", field=True)[:6],
                 tmp_path / "train.xyz")
    cfg = {"data": {"train": "train.xyz", "valid_fraction": 0.25},
           "model": {k: v for k, v in SMALL.items() if k != "species"},
           "training": {"max_epochs": 4, "batch_size": 8, "checkpoint_every": 2, **training},
           "output": "run"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_decreases_the_loss_and_writes_its_outputs(tmp_path):
    from fieldforce.cli.main import main

    config = _config(tmp_path)
    assert main(["train", str(config), "--no-progress"]) == 0
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["valid"]) == {"energy", "forces", "dipole", "polarizability",
                                     "extrapolation"}  # the last summarised, not scored
    for name in ("learning_curve", "parity_valid_forces", "parity_valid_dipole"):
        assert (run / f"{name}.png").stat().st_size > 1000
    history = torch.load(run / "checkpoint.pt", weights_only=False)["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # resume continues from the checkpoint to the new epoch limit
    config.write_text(config.read_text().replace("max_epochs: 4", "max_epochs: 6"))
    assert main(["train", str(config), "--no-progress", "--resume"]) == 0
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 6
    # eval on the training file gives the JSON format of the issue
    assert main(["eval", str(run / "model.pt"), str(tmp_path / "train.xyz"), "--json",
                 str(tmp_path / "e.json")]) == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    assert set(scores["dipole"]) == {"rmse", "mae", "rrmse", "unit", "n"}
    assert scores["dipole"]["unit"] == "e*angstrom" and scores["dipole"]["n"] == 30


def test_bad_configs_give_one_clear_error(tmp_path, capsys):
    from fieldforce.cli.main import main
    from fieldforce.training import load_config

    config = _config(tmp_path)
    text = config.read_text()
    config.write_text(text.replace("max_epochs", "max_epoch"))
    with pytest.raises(ConfigError, match="unknown key.*max_epoch"):
        load_config(config)
    config.write_text(text.replace("train.xyz", "missing.xyz"))
    assert main(["train", str(config), "--no-progress"]) == 2
    assert "missing.xyz" in capsys.readouterr().err
    config.write_text(text + "\nextra: 1\n")
    with pytest.raises(ConfigError, match="extra"):
        load_config(config)
    bad = yaml.safe_load(text)
    bad["training"]["loss_weights"] = {"dipoles": 1.0}
    with pytest.raises(ConfigError, match="dipoles"):
        load_config(bad)
    bad = yaml.safe_load(text)
    bad["model"]["family"] = "magic"
    with pytest.raises(ConfigError, match="magic"):
        load_config(bad)


def test_force_loss_parameter_gradient_matches_finite_differences(model, frames):
    """Training on forces differentiates -dU/dr with respect to the weights (double
    backward through featomic): compare with finite differences of the loss."""
    batch = collate(frames[:3])

    def force_loss():
        out = evaluate(model, batch, create_graph=True, response=False)
        return ((out["forces"] - batch.labels["forces"]) ** 2).sum()

    h = 1e-5
    for weight, index in ((model.backbone.energy_head.weight, (0, 3)),
                          (model.backbone.networks[1][0].weight, (2, 5))):
        grad = torch.autograd.grad(force_loss(), weight)[0][index]
        values = []
        for step in (h, -2 * h, h):
            with torch.no_grad():
                weight[index] += step
            values.append(float(force_loss().detach()))
        plus, minus = values[0], values[1]
        assert float(grad) == pytest.approx((plus - minus) / (2 * h), rel=1e-6)
