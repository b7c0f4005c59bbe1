"""The training cache of fixed geometries (featomic's density with its position
gradient, and the interaction pairs, found once per frame): a training step with it
must give the same loss and the same parameter gradients as without it, for the
latent-charge model (isolated and periodic, in a field: Born-charge field forces) and
the response model (dipoles, polarizabilities, frames at a finite field)."""

import numpy as np
import pytest
import torch
from ase import Atoms

from fieldforce.data.batch import collate
from fieldforce.data.frame import Frame
from fieldforce.descriptors import FixedDensity, SOAPFeatures
from fieldforce.models import build_model, evaluate

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"hidden": [16], "species": [1, 8], "interactions": 1,
         "descriptor": {"max_radial": 3, "max_angular": 2, "cutoff": 3.0}}


def periodic(frame: Frame) -> Frame:
    """The cluster in a triclinic box, centred on a corner and wrapped: its pairs cross
    the cell faces (non-zero periodic offsets)."""
    positions = frame.atoms.positions - frame.atoms.positions.mean(0)
    atoms = Atoms(frame.atoms.numbers, positions=positions,
                  cell=[[7.0, 0, 0], [1.0, 7.5, 0], [-0.5, 0.4, 7.2]], pbc=True)
    atoms.wrap()
    return Frame(atoms, dict(frame.labels))


def loss_and_gradients(model, frames, options, born=False):
    batch = collate(frames)
    out = evaluate(model, batch, born_charges=born, create_graph=True, **options)
    loss = (out["energy"] ** 2).sum() + (out["forces"] ** 2).sum()
    for key in ("dipole", "polarizability", "born_charges"):
        if key in out:
            loss = loss + (out[key] ** 2).sum()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return float(loss.detach()), [g for g in grads if g is not None]


def check_same(model, frames, options_of, **kw):
    cache = model.prepare_training(frames)
    assert len(cache) == len(frames)
    with_cache = options_of(model.training_options(frames, ("energy", "forces", "dipole",
                                                            "polarizability"), cache, True))
    assert with_cache["geometry"] is not None
    without = {**with_cache, "geometry": None}
    loss0, grads0 = loss_and_gradients(model, frames, without, **kw)
    loss1, grads1 = loss_and_gradients(model, frames, with_cache, **kw)
    assert loss1 == pytest.approx(loss0, rel=1e-12)
    assert len(grads0) == len(grads1)
    # the same sums in another order: equal to rounding (atol at 1e-10 of the largest)
    scale = max(float(g.abs().max()) for g in grads0)
    for a, b in zip(grads0, grads1, strict=True):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10 * scale)


def randomise(model):
    with torch.no_grad():  # the layer's update starts at zero: make it matter
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))


def test_fixed_density_is_featomics_with_its_gradient(water):
    features = SOAPFeatures({"species": [1, 8], "max_radial": 3, "max_angular": 2})
    frames = [water[0], periodic(water[1]), water[2]]
    batch = collate(frames)
    parts = [features.fixed_density(*(getattr(b, k) for k in ("positions", "numbers", "cell",
                                                              "pbc", "structure_index")))
             for b in (collate([f]) for f in frames)]
    density = FixedDensity.concatenate(parts)
    rng = np.random.default_rng(0)
    weights = torch.tensor(rng.normal(size=features.n_vector))

    def run(fixed):
        x = batch.positions.detach().clone().requires_grad_(True)
        f = features(x, batch.numbers, batch.cell, batch.pbc, batch.structure_index,
                     density=fixed)
        scalar = (f["invariant"] ** 2).sum() + ((f["vector"] @ weights) ** 2).sum()
        return f, torch.autograd.grad(scalar, x)[0]

    (plain, g0), (fixed, g1) = run(None), run(density)
    for key in plain:
        assert torch.equal(plain[key], fixed[key])
    assert torch.allclose(g0, g1, rtol=1e-12, atol=1e-12)
    assert g0.abs().max() > 0.1


def test_latent_training_step_is_the_same_with_the_cache(water):
    torch.manual_seed(0)
    frames = [f for f in water if f.atoms.info.get("config_type") == "trimer"][:3]
    frames = frames[:2] + [periodic(frames[2])]
    model = build_model({**SMALL, "family": "latent"})
    model.fit_statistics(frames)
    randomise(model)
    check_same(model, frames, lambda o: o, born=True)
    # periodic in a field: the field force Z*^T E goes through the density's gradient
    field = torch.tensor([0.0, 0.0, 0.05], dtype=torch.float64)
    check_same(model, frames[2:], lambda o: {**o, "field": field})


def test_response_training_step_is_the_same_with_the_cache(water):
    torch.manual_seed(1)
    frames = [f for f in water if np.abs(f.efield).max() > 0][:2] + list(water[:2])
    model = build_model({**SMALL, "family": "response"})
    model.fit_statistics(frames)
    randomise(model)
    field = torch.tensor([0.03, 0.0, -0.05], dtype=torch.float64)
    check_same(model, frames, lambda o: {**o, "field": field})
    check_same(model, frames, lambda o: o)
