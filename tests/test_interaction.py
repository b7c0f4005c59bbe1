"""The backbone's interaction layers: forces and stress against finite differences
(isolated, triclinic periodic, slab), rotation/permutation invariance, the receptive
field (an atom beyond the descriptor cutoff but within two cutoffs matters only with
a layer), response-model field terms, batching, files, and a zero update = no layer."""

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from fieldforce.data.batch import batch_from_atoms, collate
from fieldforce.data.frame import Frame
from fieldforce.models import build_model, evaluate, load_model, save_model
from finite_differences import position_derivative

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"family": "latent", "long_range": False, "hidden": [16], "species": [1, 8],
         "descriptor": {"max_radial": 3, "max_angular": 2, "cutoff": 3.0},
         "interactions": 2, "interaction_cutoff": 3.0}
TRICLINIC = np.array([[7.0, 0.0, 0.0], [1.2, 7.5, 0.0], [-0.8, 0.6, 7.2]])


def randomised(config, frames):
    torch.manual_seed(0)
    model = build_model(config)
    model.fit_statistics(frames)
    with torch.no_grad():  # the update layers start at zero: make them matter
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def frames(water):
    return [f for f in water if f.atoms.info.get("config_type") == "trimer"][:4]


@pytest.fixture(scope="module", params=[{"interaction_products": False},
                                        {"interaction_products": True},
                                        {"species_embedding": 4},
                                        {"descriptor": {**SMALL["descriptor"],
                                                        "species_channels": 1}},
                                        {"interaction_max_angular": 3,
                                         "interaction_radial": 8,
                                         "interaction_channels": 5},
                                        {"interaction_vectors": True,
                                         "interaction_products": True,
                                         "feature_scaling": "global"}],
                ids=["norms", "products", "shared", "mixed", "l3_radial_net", "vectors"])
def model(frames, request):
    """Both kinds of invariants of the densities (squared norms; inner products and
    cubic contractions), one network shared by the species with a species embedding,
    the neighbour species mixed into one learned channel, and the MACE-like options (an
    l = 3 density, a radial network, a set channel count), and equivariant vectors passed
    from the first layer to the second (with one global feature spread): every physics
    check below runs on each."""
    return randomised({**SMALL, **request.param}, frames)


def test_shared_network_tells_the_species_apart(frames):
    """With one network for all species, the species embedding is what makes an H and an
    O in the same environment differ: zero the embedding, the energy changes."""
    model = randomised({**SMALL, "species_embedding": 4}, frames)
    assert len(model.backbone.networks) == 1
    batch = collate(frames[:1])
    before = evaluate(model, batch, forces=False)["energy"].detach()
    with torch.no_grad():
        model.backbone.embedding.weight.zero_()
    after = evaluate(model, batch, forces=False)["energy"].detach()
    assert (before - after).abs().max() > 1e-3


def test_layer_vectors_rotate_with_the_structure(frames):
    """The vectors a layer passes on are polar vectors: rotating (or reflecting) the
    structure rotates them by the same matrix; and they change the next layer's energy
    (zero the map that reads them and the energy moves)."""
    model = randomised({**SMALL, "interaction_vectors": True}, frames)
    backbone = model.backbone
    first, second = backbone.interactions
    assert first.vectors_out and not first.vectors_in
    assert second.vectors_in and not second.vectors_out
    atoms = frames[1].atoms.copy()
    rotation = Rotation.from_euler("zyx", [1.1, 0.4, -0.7]).as_matrix() @ np.diag([1, -1, 1])

    def vectors_of(a):
        batch = batch_from_atoms(a)
        h = backbone.latent(backbone.batch_features(batch, equivariant=False)["invariant"],
                            batch.numbers)
        return first(h, backbone.pairs(batch), backbone.neighbors_mean)[1].detach()

    turned = atoms.copy()
    turned.positions = atoms.positions @ rotation.T
    v, v_turned = vectors_of(atoms), vectors_of(turned)
    assert v.abs().max() > 1e-3
    assert torch.allclose(v_turned, torch.einsum("ab,nbk->nak", torch.tensor(rotation), v),
                          atol=1e-10)
    batch = collate(frames[:1])
    before = evaluate(model, batch, forces=False)["energy"].detach()
    with torch.no_grad():
        second.vector_mix.zero_()
    after = evaluate(model, batch, forces=False)["energy"].detach()
    assert (before - after).abs().max() > 1e-4


def test_global_feature_scaling_keeps_the_descriptor_metric(frames, tmp_path):
    """``feature_scaling: global`` removes each invariant's mean and divides all by one
    spread: distances between environments keep the descriptor's proportions (per
    feature they would all have unit spread). The choice is kept in the model file and
    a file without it reads as per_feature."""
    model = randomised({**SMALL, "feature_scaling": "global"}, frames)
    backbone = model.backbone
    x = backbone.batch_features(collate(frames), equivariant=False)["invariant"]
    scaled = backbone.standardise(x)
    raw_spread, spread = x.std(0), scaled.std(0)
    big = raw_spread > 1e-3 * raw_spread.max()
    ratio = spread[big] / raw_spread[big]
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-10)
    assert float(spread.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-6)
    per_feature = randomised({**SMALL, "feature_scaling": "per_feature"},
                             frames).backbone.standardise(x).std(0)
    assert torch.allclose(per_feature[big], torch.ones_like(per_feature[big]), rtol=1e-6)
    again = load_model(save_model(model, tmp_path / "global.pt"))
    assert again.backbone.feature_scaling == "global"
    batch = collate(frames[:1])
    assert torch.equal(evaluate(again, batch)["forces"], evaluate(model, batch)["forces"])


def test_pair_feature_scaling_keeps_each_blocks_metric(frames):
    """``feature_scaling: pair``: within each species-pair block of the power spectrum the
    spreads keep their proportions, and each block's RMS spread is one."""
    backbone = randomised({**SMALL, "feature_scaling": "pair"}, frames).backbone
    x = backbone.batch_features(collate(frames), equivariant=False)["invariant"]
    size = backbone.features.block_size
    assert x.shape[1] == 3 * size  # H-H, H-O, O-O
    raw, spread = x.std(0).view(3, size), backbone.standardise(x).std(0).view(3, size)
    for block in range(3):
        big = raw[block] > 1e-3 * raw.max()
        ratio = spread[block][big] / raw[block][big]
        assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-10)
        assert float(spread[block].pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-6)


def test_vectors_need_two_layers():
    from fieldforce.errors import ConfigError

    with pytest.raises(ConfigError, match="interactions >= 2"):
        build_model({**SMALL, "interactions": 1, "interaction_vectors": True})


def test_traceless_matrix_inverts_the_l2_harmonics():
    """A density of one unit vector's l = 2 harmonics is r̂ r̂^T - I/3, which rotates as a
    matrix; so the cubic invariants built on it are invariants."""
    from fieldforce.models.interaction import traceless_matrix

    r = np.array([0.3, -0.5, 0.8])
    x, y, z = r / np.linalg.norm(r)
    root3 = np.sqrt(3.0)
    harmonics = torch.tensor([[root3 * x * y], [root3 * y * z], [1.5 * z * z - 0.5],
                              [root3 * x * z], [0.5 * root3 * (x * x - y * y)]])
    matrix = traceless_matrix(harmonics[None])[0, :, :, 0].numpy()
    unit = np.array([x, y, z])
    assert np.allclose(matrix, np.outer(unit, unit) - np.eye(3) / 3, atol=1e-14)


@pytest.mark.parametrize("l", [1, 2, 3])
def test_real_harmonics_rotate_by_an_orthogonal_matrix(l):
    """Each l's harmonics of a rotated vector are an orthogonal matrix (the same for every
    vector) times those of the vector: what makes the squared norms of their densities
    invariants. The matrix is fitted by least squares over many vectors, then checked to
    reproduce every vector exactly and to be orthogonal."""
    from fieldforce.models.interaction import real_harmonics

    rng = np.random.default_rng(l)
    unit = rng.normal(size=(200, 3))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    rotation = Rotation.from_euler("zyz", [0.7, -1.3, 2.2]).as_matrix()
    y = real_harmonics(torch.tensor(unit), 3)[l].numpy()
    y_turned = real_harmonics(torch.tensor(unit @ rotation.T), 3)[l].numpy()
    assert y.shape == (200, 2 * l + 1)
    d = np.linalg.lstsq(y, y_turned, rcond=None)[0].T
    assert np.allclose(y @ d.T, y_turned, atol=1e-12)
    assert np.allclose(d @ d.T, np.eye(2 * l + 1), atol=1e-12)


def test_interaction_radial_functions_vanish_at_the_cutoff():
    """Linear map or network, every radial function is zero from the cutoff on: no
    energy jump when a neighbour crosses it (the bias bug of the first layer)."""
    from fieldforce.models.interaction import Interaction

    torch.manual_seed(0)
    for radial in (0, 8):
        layer = Interaction(16, 3.0, radial=radial, max_angular=3).double()
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(torch.randn_like(p))
        r = torch.tensor([2.999999, 3.0, 3.5], dtype=torch.float64)
        values = layer.radial_functions(r)
        assert values[1:].abs().max() == 0.0
        assert values[0].abs().max() < 1e-9
        assert layer.radial_functions(torch.tensor([1.5], dtype=torch.float64)).abs().max() > 1e-3


def energy_of(model, **kw):
    def energy(atoms):
        out = evaluate(model, batch_from_atoms(atoms), forces=False, **kw)
        return float(out["energy"].detach())
    return energy


def periodic_box(frames) -> Atoms:
    trimer = frames[0].atoms
    atoms = Atoms(trimer.numbers, positions=trimer.positions + 1.0, cell=TRICLINIC, pbc=True)
    atoms.wrap()
    return atoms


def test_fit_statistics_counts_the_neighbours(model, frames):
    # mean number of neighbours within 3 Å in the water trimers: a few, not the default 1
    assert 2.0 < float(model.backbone.neighbors_mean) < 9.0


def test_forces_are_minus_the_energy_gradient_isolated_and_periodic(model, frames):
    for atoms in (frames[1].atoms.copy(), periodic_box(frames)):
        out = evaluate(model, batch_from_atoms(atoms))
        for atom, axis in ((0, 0), (4, 2), (7, 1)):
            fd = position_derivative(energy_of(model), atoms, atom, axis, 1e-5)
            assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-8)


def test_stress_is_the_strain_derivative(model, frames):
    atoms = periodic_box(frames)
    stress = evaluate(model, batch_from_atoms(atoms), forces=False, stress=True)["stress"][0]
    volume = abs(np.linalg.det(TRICLINIC))
    for i, j in ((0, 0), (1, 2), (2, 0)):
        values = []
        for sign in (1, -1):
            strained = atoms.copy()
            deform = np.eye(3)
            deform[i, j] += sign * 1e-5
            strained.set_cell(TRICLINIC @ deform, scale_atoms=True)
            values.append(energy_of(model)(strained))
        fd = (values[0] - values[1]) / 2e-5 / volume
        assert float(stress[i, j]) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_slab_forces_match_finite_differences(model, frames):
    atoms = periodic_box(frames)
    atoms.pbc = [True, True, False]
    atoms.cell[2] = [0.0, 0.0, 30.0]
    out = evaluate(model, batch_from_atoms(atoms))
    for atom, axis in ((1, 2), (5, 0)):
        fd = position_derivative(energy_of(model), atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "rotoreflection"])
def test_rotation_and_permutation_invariance(model, frames, improper):
    """The energy is invariant under rotations and reflections (every invariant is a true
    scalar: a pseudoscalar, e.g. from a cross product, would flip sign), forces rotate."""
    atoms = frames[2].atoms.copy()
    base = evaluate(model, batch_from_atoms(atoms))
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    if improper:
        rotation = rotation @ np.diag([1.0, 1.0, -1.0])
    turned = atoms.copy()
    turned.positions = atoms.positions @ rotation.T
    out = evaluate(model, batch_from_atoms(turned))
    assert float(out["energy"].detach()) == pytest.approx(float(base["energy"].detach()), abs=1e-10)
    assert torch.allclose(out["forces"], base["forces"] @ torch.tensor(rotation).T, atol=1e-9)
    order = np.random.default_rng(1).permutation(len(atoms))
    shuffled = atoms[order]
    out = evaluate(model, batch_from_atoms(shuffled))
    assert float(out["energy"].detach()) == pytest.approx(float(base["energy"].detach()), abs=1e-10)
    assert torch.allclose(out["forces"], base["forces"][order], atol=1e-10)


def test_batching_changes_nothing(model, frames):
    together = evaluate(model, collate(frames))
    for k, frame in enumerate(frames):
        alone = evaluate(model, collate([frame]))
        expected = float(alone["energy"][0].detach())
        assert float(together["energy"][k].detach()) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("interactions", [0, 1])
def test_receptive_field_grows_by_the_interaction_cutoff(frames, interactions):
    """Three O atoms on a line, 2.5 Å apart: the third is beyond the 3 Å descriptor
    cutoff of the first but within two cutoffs; only a layer lets it move atom 0's
    energy. A fourth atom beyond 2 x 3 Å never does with one layer."""
    model = randomised({**SMALL, "interactions": interactions}, frames)

    def first_energy(x):
        atoms = Atoms("O4", positions=[[0, 0, 0], [2.5, 0, 0], [5.0, 0.3, 0], [x, 0, 0]])
        return float(evaluate(model, batch_from_atoms(atoms), forces=False)
                     ["atomic_energies"][0])

    # the 4th atom far away (within reach of none): baseline; then moving the 3rd
    def with_third(y):
        atoms = Atoms("O3", positions=[[0, 0, 0], [2.5, 0, 0], [5.0, y, 0]])
        return float(evaluate(model, batch_from_atoms(atoms), forces=False)
                     ["atomic_energies"][0])

    moved = abs(with_third(0.3) - with_third(0.6))
    if interactions:
        assert moved > 1e-6
        # an atom 7.5 / 8 Å from atom 0 and > 3 Å from atoms 0-1: beyond two hops
        assert first_energy(10.0) == pytest.approx(first_energy(10.5), abs=1e-12)
    else:
        assert moved == 0.0


def test_response_model_with_interactions_keeps_its_field_derivatives(frames):
    config = {k: v for k, v in SMALL.items() if k != "long_range"}
    model = randomised({**config, "family": "response", "channels": 4}, frames)
    field = torch.tensor([0.02, -0.03, 0.05], dtype=torch.float64)
    atoms = frames[0].atoms.copy()
    out = evaluate(model, batch_from_atoms(atoms), field=field)
    for atom, axis in ((2, 1), (6, 0)):
        fd = position_derivative(energy_of(model, field=field), atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-8)
    # dipole = -dU/dE
    values = []
    for sign in (1, -1):
        shifted = field.clone()
        shifted[2] += sign * 1e-5
        values.append(float(evaluate(model, batch_from_atoms(atoms), forces=False,
                                     field=shifted)["energy"].detach()))
    assert float(out["dipole"][0, 2]) == pytest.approx(-(values[0] - values[1]) / 2e-5,
                                                       rel=1e-6)


def test_untrained_layers_change_nothing_and_files_round_trip(frames, tmp_path):
    torch.manual_seed(3)
    model = build_model(SMALL)
    model.fit_statistics(frames)
    batch = collate(frames)
    feats = model.backbone.batch_features(batch, equivariant=False)["invariant"]
    assert torch.equal(model.backbone.encode(batch, feats),
                       model.backbone.latent(feats, batch.numbers))
    trained = randomised(SMALL, frames)
    again = load_model(save_model(trained, tmp_path / "m.pt"))
    assert torch.equal(evaluate(again, batch)["forces"], evaluate(trained, batch)["forces"])
    assert float(again.backbone.neighbors_mean) == float(trained.backbone.neighbors_mean)
    # a learned species mixing is a parameter: trained with the model, kept in its file
    mixed = randomised({**SMALL, "descriptor": {**SMALL["descriptor"],
                                                "species_channels": 1}}, frames)
    energy = evaluate(mixed, batch, forces=False)["energy"].sum()
    (gradient,) = torch.autograd.grad(energy, mixed.backbone.features.species_mixing)
    assert float(gradient.abs().min()) > 0
    again = load_model(save_model(mixed, tmp_path / "mixed.pt"))
    torch.testing.assert_close(again.backbone.features.species_mixing,
                               mixed.backbone.features.species_mixing, rtol=0, atol=0)
    assert torch.equal(evaluate(again, batch)["forces"], evaluate(mixed, batch)["forces"])


def test_isolated_atom_and_single_atom_structures(model):
    alone = Frame(Atoms("O", positions=[[0, 0, 0]]))
    out = evaluate(model, collate([alone]))
    assert torch.isfinite(out["energy"]).all() and out["forces"].abs().max() == 0


def test_model_files_from_before_the_layers_load_without_them(frames, tmp_path):
    """A file written before ``interactions`` existed holds a model without layers: it
    must load as such although new models get one layer by default; and one written
    before ``feature_scaling`` existed scaled its invariants per feature."""
    assert build_model({"family": "latent", "species": [1, 8]}).settings.interactions == 1
    old = randomised({**SMALL, "interactions": 0, "feature_scaling": "per_feature"}, frames)
    path = save_model(old, tmp_path / "old.pt")
    payload = torch.load(path, weights_only=False)
    for key in ("interactions", "interaction_cutoff", "interaction_vectors",
                "feature_scaling"):
        payload["config"].pop(key)
    torch.save(payload, path)
    again = load_model(path)
    assert len(again.backbone.interactions) == 0
    assert again.backbone.feature_scaling == "per_feature"
    batch = collate(frames)
    assert torch.equal(evaluate(again, batch)["forces"], evaluate(old, batch)["forces"])


def test_energy_and_forces_are_continuous_when_a_neighbour_crosses_the_cutoff(model):
    """A pair crossing the interaction cutoff (3 Å here, also the descriptor's) changes
    neither the energy nor the forces: every radial function vanishes there with its
    slope (an MD run conserves energy only then)."""
    def at(r):
        # the H points away: only the O-O pair reaches the cutoff
        atoms = Atoms("OHO", positions=[[0, 0, 0], [-0.97, 0.0, 0.0], [r, 0.0, 0.0]])
        out = evaluate(model, batch_from_atoms(atoms))
        return float(out["energy"].detach()), out["forces"].detach()

    inside, outside = at(3.0 - 1e-7), at(3.0 + 1e-7)
    assert inside[0] == pytest.approx(outside[0], abs=1e-9)
    # forces: their change across the cutoff shrinks with the step (no jump)
    jumps = [float((at(3.0 + d)[1] - at(3.0 - d)[1]).abs().max()) for d in (1e-5, 1e-7)]
    assert jumps[1] < 0.02 * jumps[0] + 1e-9
    # and the layer matters there: the energy does change over a larger step
    assert abs(at(2.6)[0] - inside[0]) > 1e-4
