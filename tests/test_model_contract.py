"""The model contract: a family defined here, outside src/, goes through the whole package.

``EnsembleDipoleModel`` has an energy, a dipole from an ensemble of charge heads and one
extra per-structure output that no file in src/ knows of, ``dipole_uncertainty``. It is
trained by ``fieldforce train``, scored by ``fieldforce eval``, saved and loaded, run in
the ASE calculator and in ``fieldforce md``, and its extra output shows up in each.
Two more families check the other declarations: a closed-form fit (``fitting =
"closed_form"``) and a model that couples to the external potential
(``needs_potential``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import ase.io
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from fieldforce.cli.main import main
from fieldforce.config import option
from fieldforce.data.batch import batch_from_atoms, collate
from fieldforce.data.io import write_frames
from fieldforce.data.trajectory import frame_value
from fieldforce.errors import ConfigError
from fieldforce.fields import AnalyticField, PointChargeField
from fieldforce.models import FieldModel, build_model, evaluate, load_model, output, save_model
from fieldforce.models.backbone import Backbone, BackboneSettings
from fieldforce.models.contract import ModelSettings
from fieldforce.simulation import FieldForceCalculator, run_md
from fieldforce.training import Trainer, load_config

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"cutoff": 3.0, "max_radial": 2, "max_angular": 2}


@dataclass(kw_only=True)
class EnsembleSettings(BackboneSettings):
    family: str = option("test_ensemble", "model family")
    heads: int = option(2, "charge heads in the ensemble", minimum=2)


class EnsembleDipoleModel(FieldModel):
    """U = U0(R) - E.mu; mu the mean of ``heads`` dipoles sum_i q_i^(k) r_i (neutral
    charges from linear heads on the backbone's latent), its spread the uncertainty."""

    family = "test_ensemble"
    settings_class = EnsembleSettings
    outputs = (
        output("dipole"),
        output("dipole_uncertainty", like="dipole",
               description="standard deviation of the ensemble's dipoles"),
    )
    field_support = "uniform"
    default_loss_weights = {"energy": 1.0, "forces": 10.0, "dipole": 10.0}

    def __init__(self, config=None):
        super().__init__(config)
        self.backbone = Backbone(self.settings.species or [], self.settings.descriptor,
                                 self.settings.hidden)
        self.config["species"] = self.backbone.species
        self.heads = nn.Linear(self.backbone.width, self.settings.heads)
        self.double()

    def fit_statistics(self, frames):
        self.backbone.fit_statistics(collate(frames))

    def forward(self, batch, atom_field):
        feats = self.backbone.batch_features(batch, equivariant=False)
        h = self.backbone.latent(feats["invariant"], batch.numbers)
        energy = batch.sum_per_structure(self.backbone.atomic_energy(h, batch.numbers))
        q = 0.1 * self.heads(h)  # [N, K]
        n = batch.n_atoms_per_structure.to(q.dtype)[:, None]
        q = q - (batch.sum_per_structure(q) / n)[batch.structure_index]
        dipoles = batch.sum_per_structure(q[:, :, None] * batch.positions[:, None, :])
        mu = dipoles.mean(1)  # [B, 3]
        field = batch.sum_per_structure(atom_field) / n
        return {"energy": energy - (field * mu).sum(-1), "dipole": mu,
                "dipole_uncertainty": dipoles.std(1)}


@dataclass(kw_only=True)
class CompositionSettings(ModelSettings):
    family: str = option("test_composition", "model family")


class CompositionModel(FieldModel):
    """U = sum_Z n_Z b_Z, fitted in closed form (least squares); no field coupling."""

    family = "test_composition"
    settings_class = CompositionSettings
    field_support = "none"
    fitting = "closed_form"
    default_loss_weights = {"energy": 1.0}

    def __init__(self, config=None):
        super().__init__(config)
        self.register_buffer("baseline", torch.zeros(119, dtype=torch.float64))

    def fit(self, frames, weights):
        counts = np.array([np.bincount(f.atoms.numbers, minlength=119) for f in frames], float)
        energy = np.array([float(f.labels["energy"]) for f in frames])
        solution = np.linalg.lstsq(counts, energy, rcond=None)[0]
        self.baseline.copy_(torch.as_tensor(solution))
        return {"species_energies": {int(z): float(solution[z]) for z in (1, 8)}}

    def forward(self, batch, atom_field):
        atomic = self.baseline[batch.numbers] + 0.0 * batch.positions.sum(-1)
        return {"energy": batch.sum_per_structure(atomic)}


@dataclass(kw_only=True)
class FixedChargeSettings(ModelSettings):
    family: str = option("test_fixed_charges", "model family")
    charges: dict[str, float] = option({"1": 0.4, "8": -0.8}, "charge per atomic number")


class FixedChargeModel(FieldModel):
    """U = sum_i q_Z phi_ext(r_i): fixed charges in the external potential."""

    family = "test_fixed_charges"
    settings_class = FixedChargeSettings
    needs_potential = True
    outputs = (output("charges"),)

    def forward(self, batch, atom_field, atom_potential):
        q = torch.tensor([self.settings.charges[str(int(z))] for z in batch.numbers],
                         dtype=atom_potential.dtype)
        return {"energy": batch.sum_per_structure(q * atom_potential), "charges": q}


@pytest.fixture(scope="module")
def data(water, tmp_path_factory):
    """30 small frames with dipoles (some at finite fields) as a canonical file."""
    d = tmp_path_factory.mktemp("contract")
    frames = [f for f in water if len(f.atoms) <= 6][:30]
    write_frames(frames, d / "frames.xyz")
    return d, frames


@pytest.fixture(scope="module")
def trained(data):
    """The ensemble family trained through the CLI (``fieldforce train``)."""
    d, _ = data
    config = {"data": {"train": "frames.xyz", "valid_fraction": 0.2},
              "model": {"family": "test_ensemble", "descriptor": SMALL, "hidden": [8]},
              "training": {"max_epochs": 3, "batch_size": 8, "seed": 1},
              "output": "run"}
    (d / "train.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(d / "train.yaml"), "--no-progress"]) == 0
    return d / "run"


def test_the_family_registers_by_subclassing():
    model = build_model({"family": "test_ensemble", "species": [1, 8], "descriptor": SMALL,
                         "hidden": [8], "heads": 3})
    assert isinstance(model, EnsembleDipoleModel) and model.settings.heads == 3
    names = [o.name for o in model.output_specs()]
    assert names[:3] == ["energy", "forces", "stress"] and "dipole_uncertainty" in names
    assert "born_charges" not in names  # no charges, so no Born charges
    spec = model.output_spec("dipole_uncertainty")
    assert (spec.per_atom, spec.shape, spec.unit, spec.label) == (False, (3,), "e*angstrom",
                                                                   None)
    with pytest.raises(ConfigError, match="heads': expected an integer >= 2"):
        build_model({"family": "test_ensemble", "species": [1, 8], "heads": 1})
    with pytest.raises(ConfigError, match="unknown key 'haeds' .*did you mean 'heads'"):
        build_model({"family": "test_ensemble", "species": [1, 8], "haeds": 2})
    # a head the family does not register: one sentence naming what it offers
    with pytest.raises(ConfigError, match="'test_ensemble' family has no 'gpr' heads; it "
                                          "offers: neural"):
        build_model({"family": "test_ensemble", "species": [1, 8], "head": "gpr"})


def test_train_and_eval_through_the_cli(trained, data, capsys):
    d, frames = data
    metrics = json.loads((trained / "metrics.json").read_text())
    # the family's default loss weights (dipole among them) were used
    assert {"energy", "forces", "dipole"} <= set(metrics["valid"])
    uncertainty = metrics["valid"]["dipole_uncertainty"]
    assert uncertainty["unit"] == "e*angstrom" and uncertainty["n"] == 6
    assert uncertainty["rms"] > 0 and "rmse" not in uncertainty
    capsys.readouterr()
    assert main(["eval", str(trained / "model.pt"), str(d / "frames.xyz"),
                 "--json", str(d / "eval.json")]) == 0
    table = json.loads((d / "eval.json").read_text())
    assert table["dipole"]["n"] == len(frames) and table["dipole"]["unit"] == "e*angstrom"
    assert table["dipole_uncertainty"]["n"] == len(frames)
    assert "dipole_uncertainty" in capsys.readouterr().out


def test_save_load_calculator_and_md_carry_the_extra_output(trained, data):
    d, frames = data
    model = load_model(trained / "model.pt")
    assert type(model) is EnsembleDipoleModel
    assert {o["name"]: o["unit"] for o in model.metadata["outputs"]}["dipole_uncertainty"] \
        == "e*angstrom"
    again = load_model(save_model(model, d / "again.pt"))
    batch = collate(frames[:4])
    first = evaluate(model, batch)["dipole_uncertainty"]
    torch.testing.assert_close(evaluate(again, batch)["dipole_uncertainty"], first,
                               rtol=0, atol=0)

    atoms = frames[-1].atoms.copy()
    atoms.calc = FieldForceCalculator(model, efield=[0.0, 0.0, 0.05])
    atoms.get_potential_energy()
    direct = evaluate(model, batch_from_atoms(atoms), field=torch.tensor([0.0, 0.0, 0.05]))
    np.testing.assert_allclose(atoms.calc.results["dipole_uncertainty"],
                               direct["dipole_uncertainty"][0].detach().numpy(), atol=1e-12)
    assert "dipole_uncertainty" in atoms.calc.implemented_properties

    ase.io.write(d / "start.xyz", frames[-1].atoms)
    summary = run_md({"structure": "start.xyz", "model": str(trained / "model.pt"),
                      "output": "md", "ensemble": "nve", "steps": 4, "write_interval": 2,
                      "timestep_fs": 0.25, "field": {"type": "static", "vector": [0, 0, 0.05]}},
                     base_dir=d, progress=False)
    trajectory = ase.io.read(summary["trajectory"], ":")
    assert [f.info["step"] for f in trajectory] == [0, 2, 4]
    for frame in trajectory:
        value = np.asarray(frame_value(frame, "dipole_uncertainty"), dtype=float)
        probe = frame.copy()
        probe.calc = FieldForceCalculator(model, efield=[0.0, 0.0, 0.05])
        probe.get_potential_energy()
        np.testing.assert_allclose(value, probe.calc.results["dipole_uncertainty"], atol=1e-7)


def test_closed_form_family_is_fitted_without_epochs(data, tmp_path):
    _, frames = data
    config = load_config({"data": {"train": "unused.xyz"}, "output": str(tmp_path / "run"),
                          "model": {"family": "test_composition"}})
    assert config["training"]["loss_weights"] == {"energy": 1.0}
    train, valid = frames[:24], frames[24:]
    result = Trainer(config, progress=False, data=(train, valid, [])).fit()
    assert result["stopped_by"] == "closed-form fit" and result["epochs"] == 0
    # independently: the least-squares composition energies, scored per atom on valid
    counts = np.array([[np.sum(f.atoms.numbers == z) for z in (1, 8)] for f in train], float)
    b = np.linalg.lstsq(counts, [float(f.labels["energy"]) for f in train], rcond=None)[0]
    per_atom = [(float(f.labels["energy"]) - np.sum(f.atoms.numbers == 1) * b[0]
                 - np.sum(f.atoms.numbers == 8) * b[1]) / len(f.atoms) for f in valid]
    assert result["valid"]["energy"]["rmse"] == pytest.approx(np.sqrt(np.mean(
        np.square(per_atom))), rel=1e-9)
    assert result["fit"]["species_energies"][8] == pytest.approx(b[1], rel=1e-9)
    assert load_model(tmp_path / "run" / "model.pt").baseline[8] == pytest.approx(b[1])


def test_a_model_can_couple_to_the_external_potential(water):
    atoms = next(f.atoms for f in water if len(f.atoms) == 6).copy()
    model = build_model({"family": "test_fixed_charges"})
    q = np.where(atoms.numbers == 1, 0.4, -0.8)
    # uniform field: phi = -E.r, so F_i = q_i E exactly and U = -E.sum q r
    field = np.array([0.02, -0.01, 0.05])
    atoms.calc = FieldForceCalculator(model, efield=field)
    np.testing.assert_allclose(atoms.get_forces(), q[:, None] * field, atol=1e-12)
    assert atoms.get_potential_energy() == pytest.approx(-field @ (q @ atoms.positions))
    # a point charge: U = sum_i q_i phi(r_i), forces = -gradient (central differences)
    point = PointChargeField(charge=1.0, center=[6.0, 0.0, 0.0], softening=0.5)
    atoms.calc = FieldForceCalculator(model, efield=point)
    phi = point.potential(torch.as_tensor(atoms.positions)).numpy()
    assert atoms.get_potential_energy() == pytest.approx(float(q @ phi), rel=1e-12)
    forces, h = atoms.get_forces(), 1e-5
    for i, a in ((0, 0), (4, 2)):
        moved = [atoms.copy() for _ in range(2)]
        moved[0].positions[i, a] += h
        moved[1].positions[i, a] -= h
        energies = []
        for m in moved:
            m.calc = FieldForceCalculator(model, efield=point)
            energies.append(m.get_potential_energy())
        assert forces[i, a] == pytest.approx(-(energies[0] - energies[1]) / (2 * h), rel=1e-6)
    # a field without a potential cannot drive it
    atoms.calc = FieldForceCalculator(model, efield=AnalyticField(lambda r, t: 0 * r))
    with pytest.raises(ConfigError, match="has none"):
        atoms.get_potential_energy()
