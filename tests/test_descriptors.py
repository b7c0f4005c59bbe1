"""SOAP / lambda-SOAP descriptors: symmetry, autograd gradients, periodic cells, layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("featomic.torch")

from fieldforce.descriptors import (  # noqa: E402
    DescriptorSettings,
    SOAPFeatures,
    spherical_to_cartesian_l2,
)
from fieldforce.errors import ConfigError, DataError  # noqa: E402

WATER = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
SMALL = {"cutoff": 4.0, "max_radial": 3, "max_angular": 3}


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def water_cluster(n: int, rng: np.random.Generator, spacing: float = 2.9) -> np.ndarray:
    """[3n, 3] Å: n randomly oriented waters on a line of spacing Å, slightly jittered."""
    molecules = [
        WATER @ random_rotation(rng).T + [spacing * k, 0.3 * k, 0.0] + rng.normal(0, 0.05, 3)
        for k in range(n)
    ]
    return np.concatenate(molecules)


def batch(structures: list[tuple[np.ndarray, list[int], np.ndarray | None]]):
    """Batch tensors from (positions, numbers, cell or None) per structure."""
    positions = torch.tensor(np.concatenate([s[0] for s in structures]))
    numbers = torch.tensor(sum((list(s[1]) for s in structures), []), dtype=torch.int64)
    cells = [np.zeros((3, 3)) if s[2] is None else s[2] for s in structures]
    cell = torch.tensor(np.stack(cells))
    pbc = torch.tensor([[s[2] is not None] * 3 for s in structures])
    index = torch.cat([torch.full((len(s[1]),), b) for b, s in enumerate(structures)])
    return positions, numbers, cell, pbc, index


@pytest.fixture(scope="module")
def soap() -> SOAPFeatures:
    return SOAPFeatures(DescriptorSettings(**SMALL))


@pytest.fixture(scope="module")
def two_structures():
    rng = np.random.default_rng(1)
    dimer = (water_cluster(2, rng), [8, 1, 1] * 2, None)
    trimer = (water_cluster(3, rng), [8, 1, 1] * 3, None)
    return dimer, trimer


def test_settings_roundtrip_and_errors():
    settings = DescriptorSettings.from_dict({"cutoff": 5.0, "atomic_gaussian_width": 0.4})
    assert settings.density_width == 0.4
    assert DescriptorSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ConfigError, match="unknown key 'max_radiall'"):
        DescriptorSettings.from_dict({"max_radiall": 4})
    with pytest.raises(ConfigError):
        DescriptorSettings(species=[])
    positions, numbers, cell, pbc, index = batch([(WATER, [8, 1, 6], None)])
    with pytest.raises(ConfigError, match=r"atomic numbers \[6\]"):
        SOAPFeatures(SMALL)(positions, numbers, cell, pbc, index)


def test_invariants_under_rotation_translation_permutation(soap, two_structures):
    rng = np.random.default_rng(2)
    dimer, trimer = two_structures
    reference = soap(*batch([dimer, trimer]), equivariant=False)["invariant"]
    assert reference.shape == (15, soap.n_invariant)
    assert reference.abs().max() > 0.05

    rotation = random_rotation(rng)
    moved = (trimer[0] @ rotation.T + rng.normal(0, 3, 3), trimer[1], None)
    rotated = soap(*batch([dimer, moved]), equivariant=False)["invariant"]
    torch.testing.assert_close(rotated, reference, rtol=0, atol=1e-10)

    # permute atoms across the whole batch (structure index no longer sorted)
    positions, numbers, cell, pbc, index = batch([dimer, trimer])
    perm = torch.tensor(rng.permutation(len(numbers)))
    permuted = soap(positions[perm], numbers[perm], cell, pbc, index[perm], equivariant=False)
    torch.testing.assert_close(permuted["invariant"], reference[perm], rtol=0, atol=1e-12)

    # not trivially invariant: a distortion changes the features
    bent = (trimer[0] + rng.normal(0, 0.05, trimer[0].shape), trimer[1], None)
    distorted = soap(*batch([dimer, bent]), equivariant=False)["invariant"]
    assert (distorted[6:] - reference[6:]).abs().max() > 1e-3
    torch.testing.assert_close(distorted[:6], reference[:6], rtol=0, atol=1e-12)


def test_equivariants_rotate_as_vectors_and_tensors(soap, two_structures):
    rng = np.random.default_rng(3)
    dimer, trimer = two_structures
    reference = soap(*batch([dimer, trimer]))
    vector, tensor = reference["vector"], reference["tensor"]
    assert vector.shape == (15, 3, soap.n_vector) and tensor.shape == (15, 5, soap.n_tensor)
    assert vector.abs().max() > 0.01 and tensor.abs().max() > 0.01

    rotation = random_rotation(rng)
    shift = rng.normal(0, 2, 3)
    rotated = soap(*batch([(s[0] @ rotation.T + shift, s[1], None) for s in (dimer, trimer)]))
    rot = torch.tensor(rotation)
    expected_vector = torch.einsum("ab,nbf->naf", rot, vector)
    torch.testing.assert_close(rotated["vector"], expected_vector, rtol=0, atol=1e-10)

    cartesian = spherical_to_cartesian_l2(tensor)
    assert cartesian.shape == (15, 3, 3, soap.n_tensor)
    torch.testing.assert_close(cartesian, cartesian.transpose(1, 2), rtol=0, atol=1e-14)
    trace = torch.einsum("naaf->nf", cartesian)
    torch.testing.assert_close(trace, torch.zeros_like(trace), rtol=0, atol=1e-14)
    # the map is orthonormal, so the Frobenius norm equals the spherical norm
    torch.testing.assert_close(cartesian.square().sum((1, 2)), tensor.square().sum(1))
    expected_tensor = torch.einsum("ab,nbcf,dc->nadf", rot, cartesian, rot)
    rotated_tensor = spherical_to_cartesian_l2(rotated["tensor"])
    torch.testing.assert_close(rotated_tensor, expected_tensor, rtol=0, atol=1e-10)

    # inversion: polar vectors flip sign, rank-2 tensors do not
    inverted = soap(*batch([(-s[0], s[1], None) for s in (dimer, trimer)]))
    torch.testing.assert_close(inverted["vector"], -vector, rtol=0, atol=1e-10)
    torch.testing.assert_close(inverted["tensor"], tensor, rtol=0, atol=1e-10)


def linear_readout(soap: SOAPFeatures, seed: int):
    gen = torch.Generator().manual_seed(seed)
    weights = {
        "invariant": torch.randn(soap.n_invariant, generator=gen, dtype=torch.float64),
        "vector": torch.randn(3, soap.n_vector, generator=gen, dtype=torch.float64),
        "tensor": torch.randn(5, soap.n_tensor, generator=gen, dtype=torch.float64),
    }

    def readout(features: dict[str, torch.Tensor]) -> torch.Tensor:
        atom = torch.arange(len(features["invariant"]), dtype=torch.float64) + 1.0
        return sum(torch.einsum("n...,...,n->", features[k], w, atom) for k, w in weights.items())

    return readout


def test_position_gradient_matches_finite_differences(soap):
    rng = np.random.default_rng(4)
    positions, numbers, cell, pbc, index = batch([(water_cluster(2, rng), [8, 1, 1] * 2, None)])
    readout = linear_readout(soap, seed=5)

    positions.requires_grad_(True)
    (gradient,) = torch.autograd.grad(
        readout(soap(positions, numbers, cell, pbc, index)), positions
    )

    h = 1e-4
    numeric = torch.zeros_like(gradient)
    with torch.no_grad():
        for i in range(len(positions)):
            for a in range(3):
                values = []
                for sign in (1.0, -1.0):
                    shifted = positions.detach().clone()
                    shifted[i, a] += sign * h
                    values.append(readout(soap(shifted, numbers, cell, pbc, index)))
                numeric[i, a] = (values[0] - values[1]) / (2 * h)
    assert gradient.abs().max() > 1e-2
    error = (gradient - numeric).abs().max() / gradient.abs().max()
    assert error < 1e-6, f"relative error {error:.2e}"


@pytest.fixture(scope="module")
def water_box():
    """8 waters in a 6 Å cubic box (about liquid density)."""
    rng = np.random.default_rng(6)
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)])
    positions = np.concatenate(
        [WATER @ random_rotation(rng).T + 3.0 * g + 0.7 + rng.normal(0, 0.1, 3) for g in grid]
    )
    return positions, [8, 1, 1] * 8, 6.0 * np.eye(3)


def test_periodic_box_wrap_and_strain_gradient(soap, water_box):
    positions, numbers, cell = water_box
    reference = soap(*batch([water_box]))
    assert reference["invariant"].abs().max() > 0.1

    # periodic images really are seen: different from the same atoms in vacuum
    vacuum = soap(*batch([(positions, numbers, None)]), equivariant=False)["invariant"]
    assert (vacuum - reference["invariant"]).abs().max() > 1e-2

    wrapped = positions.copy()
    wrapped[4] += cell[1] - cell[2]
    moved = soap(*batch([(wrapped, numbers, cell)]))
    for key in ("invariant", "vector", "tensor"):
        torch.testing.assert_close(moved[key], reference[key], rtol=0, atol=1e-10)

    # strain derivative: positions and cell both follow (1 + eps)
    readout = linear_readout(soap, seed=7)
    pos0, z, cell0, pbc, index = batch([water_box])

    def strained(eps: torch.Tensor) -> torch.Tensor:
        deformation = torch.eye(3, dtype=torch.float64) + eps
        return readout(soap(pos0 @ deformation, z, cell0 @ deformation, pbc, index))

    eps = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    (strain_gradient,) = torch.autograd.grad(strained(eps), eps)
    assert strain_gradient.abs().max() > 1e-2
    h = 1e-5
    shear = torch.zeros(3, 3, dtype=torch.float64)
    shear[0, 1] = shear[1, 0] = 1.0
    for direction in (torch.eye(3, dtype=torch.float64), shear):
        with torch.no_grad():
            numeric = (strained(h * direction) - strained(-h * direction)) / (2 * h)
        analytic = (strain_gradient * direction).sum()
        assert abs(analytic - numeric) < 1e-6 * strain_gradient.abs().max()

    # cell-only gradient (Cartesian positions fixed) against finite differences
    cell_var = cell0.clone().requires_grad_(True)
    (cell_gradient,) = torch.autograd.grad(readout(soap(pos0, z, cell_var, pbc, index)), cell_var)
    assert cell_gradient.abs().max() > 1e-3
    step = torch.zeros_like(cell0)
    step[0, 2, 2] = h
    with torch.no_grad():
        plus = readout(soap(pos0, z, cell0 + step, pbc, index))
        minus = readout(soap(pos0, z, cell0 - step, pbc, index))
    numeric = (plus - minus) / (2 * h)
    assert abs(cell_gradient[0, 2, 2] - numeric) < 1e-6 * cell_gradient.abs().max()


def test_slab_with_mixed_pbc_matches_large_vacuum(soap, water_box):
    """pbc (T, T, F): same features as a fully periodic cell with vacuum > cutoff."""
    positions, numbers, cell = water_box
    layer = positions[positions[:, 2] < 3.5]
    layer_numbers = [n for n, z in zip(numbers, positions[:, 2], strict=True) if z < 3.5]
    vacuum_cell = np.diag([6.0, 6.0, 30.0])
    slab = batch([(layer, layer_numbers, vacuum_cell)])
    slab[3][0, 2] = False
    positions_slab = slab[0].clone().requires_grad_(True)
    features = soap(positions_slab, *slab[1:])
    reference = soap(*batch([(layer, layer_numbers, vacuum_cell)]))
    vacuum = soap(*batch([(layer, layer_numbers, None)]))
    for key in ("invariant", "vector", "tensor"):
        torch.testing.assert_close(features[key], reference[key], rtol=0, atol=1e-12)
    assert (features["invariant"] - vacuum["invariant"]).abs().max() > 1e-2
    (gradient,) = torch.autograd.grad(features["vector"].sum(), positions_slab)
    assert torch.isfinite(gradient).all() and gradient.abs().max() > 1e-3


def test_slab_with_an_atom_far_in_the_vacuum_is_a_clear_error(soap, water_box):
    """featomic divides by zero on ~10^5-cutoff vacuum spans: a DataError names the atom."""
    positions, numbers, _ = water_box
    layer = positions[positions[:, 2] < 3.5].copy()
    layer_numbers = [n for n, z in zip(numbers, positions[:, 2], strict=True) if z < 3.5]
    cell = np.diag([6.0, 6.0, 30.0])
    for height, fails in ((2e4, False), (1e6, True)):
        moved = layer.copy()
        moved[2, 2] += height
        slab = batch([(moved, layer_numbers, cell)])
        slab[3][0, 2] = False
        if fails:
            with pytest.raises(DataError, match="atom 2 lies 1e[+]06 Å from the others"):
                soap(*slab)
        else:
            features = soap(*slab)["invariant"]
            alone = soap(*batch([(moved[2:3], layer_numbers[2:3], None)]))["invariant"]
            torch.testing.assert_close(features[2], alone[0], rtol=0, atol=1e-12)


def test_layout_does_not_depend_on_batch_species(two_structures):
    dimer, _ = two_structures
    methane = (
        np.array(
            [
                [0, 0, 0],
                [0.63, 0.63, 0.63],
                [-0.63, -0.63, 0.63],
                [-0.63, 0.63, -0.63],
                [0.63, -0.63, -0.63],
            ]
        )
        + [0.5, 2.0, 0.0],
        [6, 1, 1, 1, 1],
        None,
    )
    water_only = SOAPFeatures(DescriptorSettings(**SMALL, species=[1, 8]))
    wide = SOAPFeatures(DescriptorSettings(**SMALL, species=[8, 6, 1]))
    assert wide.settings.species == [1, 6, 8]

    alone = wide(*batch([dimer]))
    mixed = wide(*batch([methane, dimer]))
    narrow = water_only(*batch([dimer]))
    for key in ("invariant", "vector", "tensor"):
        assert alone[key].shape[1:] == mixed[key].shape[1:]
        torch.testing.assert_close(mixed[key][5:], alone[key], rtol=0, atol=1e-12)
        assert mixed[key][:5].abs().max() > 1e-3  # methane's own features are non-zero

    # the [1, 8] features sit at the (H,H), (H,O), (O,O) pair blocks of [1, 6, 8]
    blocks = alone["invariant"].reshape(6, 6, -1)
    torch.testing.assert_close(blocks[:, [0, 2, 5]].reshape(6, -1), narrow["invariant"])
    assert blocks[:, [1, 3, 4]].abs().max() == 0
    assert wide.n_vector > water_only.n_vector
    for key in ("vector", "tensor"):
        torch.testing.assert_close(alone[key].norm(dim=2), narrow[key].norm(dim=2))


def featomic_features(soap: SOAPFeatures, positions, numbers, cell, pbc, index):
    """The same features straight from featomic's SoapPowerSpectrum and
    EquivariantPowerSpectrum (the reference that fieldforce's products of the spherical
    expansion must reproduce), in the batch's atom order."""
    from fieldforce.descriptors.spherical import L1_TO_XYZ

    systems, order = soap._systems(positions, numbers, cell, pbc, index)
    spectrum = soap._lambda_soap.compute(systems, selected_keys=soap._equivariant_keys,
                                         neighbors_to_properties=True)
    offsets = torch.zeros(len(systems) + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.tensor([len(s) for s in systems]), 0)
    n = len(numbers)
    invariant = torch.zeros(n, len(soap._pairs), soap.block_size, dtype=torch.float64)
    for key, block in soap._power_spectrum.compute(systems).items():
        pair = soap._pairs.index((soap._type_index[int(key["neighbor_1_type"])],
                                  soap._type_index[int(key["neighbor_2_type"])]))
        rows = order[offsets[block.samples.values[:, 0].long()] + block.samples.values[:, 1].long()]
        invariant = invariant.index_put((rows, torch.full_like(rows, pair)), block.values)
    vector = torch.zeros(n, 3, soap.n_vector, dtype=torch.float64)
    tensor = torch.zeros(n, 5, soap.n_tensor, dtype=torch.float64)
    for key, block in spectrum.items():
        rows = order[offsets[block.samples.values[:, 0].long()] + block.samples.values[:, 1].long()]
        if int(key["o3_lambda"]) == 1:
            vector = vector.index_put((rows,), block.values[:, L1_TO_XYZ])
        else:
            tensor = tensor.index_put((rows,), block.values)
    return invariant.reshape(n, -1), vector, tensor


@pytest.mark.parametrize("settings", [SMALL, {"cutoff": 3.5, "max_radial": 2, "max_angular": 4,
                                              "species": [1, 6, 8]}])
def test_features_equal_featomic_values_and_gradients(settings, two_structures, water_box):
    soap = SOAPFeatures(DescriptorSettings(**settings))  # with [1, 6, 8]: carbon never occurs
    positions, numbers, cell, pbc, index = batch([*two_structures, water_box])
    positions.requires_grad_(True)
    cell.requires_grad_(True)
    ours = soap(positions, numbers, cell, pbc, index)
    invariant, vector, tensor = featomic_features(soap, positions, numbers, cell, pbc, index)
    assert vector.abs().max() > 0.05 and tensor.abs().max() > 0.05
    torch.testing.assert_close(ours["invariant"], invariant, rtol=0, atol=1e-13)
    torch.testing.assert_close(ours["vector"], vector, rtol=0, atol=1e-13)
    torch.testing.assert_close(ours["tensor"], tensor, rtol=0, atol=1e-13)
    rng = torch.Generator().manual_seed(2)
    reference = (invariant, vector, tensor)
    weights = [torch.randn(x.shape, generator=rng, dtype=torch.float64) for x in reference]
    mine = torch.autograd.grad(sum((ours[k] * w).sum() for k, w in
                                   zip(("invariant", "vector", "tensor"), weights, strict=True)),
                               [positions, cell])
    reference = torch.autograd.grad(sum((x * w).sum() for x, w in
                                        zip(reference, weights, strict=True)), [positions, cell])
    for a, b in zip(mine, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_species_channels_mix_the_species_densities(two_structures):
    """K = T channels with the identity mixing are the per-species features exactly;
    one channel is the species-blind SOAP, i.e. featomic's for the same atoms all made
    one species; mixed features keep every symmetry and pass gradients to the mixing."""
    rng = np.random.default_rng(11)
    mixed = (water_cluster(2, rng) @ random_rotation(rng).T, [8, 1, 1, 6, 1, 1], None)
    species = {"species": [1, 6, 8], **SMALL}
    plain = SOAPFeatures(species)
    three = SOAPFeatures({**species, "species_channels": 3})
    with torch.no_grad():
        three.species_mixing.copy_(torch.eye(3))
    args = batch([mixed, two_structures[0]])
    want, got = plain(*args), three(*args)
    torch.testing.assert_close(got["invariant"], want["invariant"], rtol=0, atol=1e-14)
    for key, lam in (("vector", 1), ("tensor", 2)):  # featomic's column order vs the mixed one
        order = plain._products[lam][0]
        torch.testing.assert_close(got[key][..., order], want[key], rtol=0, atol=1e-14)

    one = SOAPFeatures({**species, "species_channels": 1})
    assert one.n_invariant == plain.n_invariant // 6
    blind = SOAPFeatures({**SMALL, "species": [1]})
    positions, numbers, cell, pbc, index = args
    reference = blind(positions, torch.ones_like(numbers), cell, pbc, index, equivariant=False)
    # the initial single channel is the total density / sqrt(3): features scale by 1/3
    torch.testing.assert_close(3 * one(*args, equivariant=False)["invariant"],
                               reference["invariant"], rtol=1e-12, atol=1e-14)

    two = SOAPFeatures({**species, "species_channels": 2})
    assert two.n_invariant == 3 * plain.n_invariant // 6
    base = two(*args)
    rotation, shift = torch.tensor(random_rotation(rng)), torch.tensor(rng.normal(0, 2, 3))
    turned = two(positions @ rotation.T + shift, numbers, cell, pbc, index)
    torch.testing.assert_close(turned["invariant"], base["invariant"], rtol=0, atol=1e-10)
    torch.testing.assert_close(turned["vector"], torch.einsum("ab,nbf->naf", rotation,
                                                              base["vector"]),
                               rtol=0, atol=1e-10)
    readout = linear_readout(two, seed=12)
    (gradient,) = torch.autograd.grad(readout(base), two.species_mixing)
    h = 1e-6
    with torch.no_grad():
        two.species_mixing[2, 1] += h
        up = readout(two(*args))
        two.species_mixing[2, 1] -= 2 * h
        down = readout(two(*args))
        two.species_mixing[2, 1] += h
    assert float(gradient[2, 1]) == pytest.approx(float(up - down) / (2 * h), rel=1e-6)
    assert float(gradient.abs().min()) > 0


@pytest.mark.parametrize("r", [1.0, 2.2, 3.5])
def test_radial_scaling_weights_each_neighbour_by_willatt_form(r):
    """A dimer's neighbour density (l >= 1: the centre's own Gaussian is spherical) is
    the unscaled one times 1 / (1 + (r / r0)^m) exactly; bad settings are refused."""
    dimer = batch([(np.array([[0.0, 0.0, 0.0], [0.3 * r, -0.4 * r, np.sqrt(0.75) * r]]),
                    [8, 1], None)])
    plain = SOAPFeatures(SMALL).fixed_density(*dimer).values
    scaled = SOAPFeatures({**SMALL, "radial_scaling": [2.0, 4]}).fixed_density(*dimer).values
    weight = 1.0 / (1.0 + (r / 2.0) ** 4)
    for l in range(1, SMALL["max_angular"] + 1):
        assert float(plain[l].abs().max()) > 1e-6
        torch.testing.assert_close(scaled[l], weight * plain[l], rtol=1e-10, atol=1e-14)
    for bad in ([2.0], [2.0, 4, 1], [0.0, 4]):
        with pytest.raises(ConfigError, match="radial_scaling"):
            DescriptorSettings(radial_scaling=bad)


def test_radial_scaling_on_the_invariants_only(two_structures):
    """radial_scaling_scope "invariant": the power spectrum is the scaled settings', the
    lambda-SOAP the unscaled settings', computed directly or from the fixed density (the
    training cache), with the same position gradient of a mixed scalar both ways."""
    args = batch(list(two_structures))
    positions = args[0]
    scaled = SOAPFeatures({**SMALL, "radial_scaling": [2.0, 4]})(*args)
    plain = SOAPFeatures(SMALL)(*args)
    soap = SOAPFeatures({**SMALL, "radial_scaling": [2.0, 4],
                         "radial_scaling_scope": "invariant"})
    assert float((scaled["invariant"] - plain["invariant"]).abs().max()) > 1e-3
    direct = soap(positions.clone().requires_grad_(), *args[1:])
    torch.testing.assert_close(direct["invariant"], scaled["invariant"], rtol=0, atol=1e-14)
    for key in ("vector", "tensor"):
        torch.testing.assert_close(direct[key], plain[key], rtol=0, atol=1e-14)
    assert set(soap(*args, equivariant=False)) == {"invariant"}
    fixed = soap.fixed_density(*args)
    assert fixed.equivariant is not None
    assert fixed.nbytes() > 2 * fixed.equivariant.nbytes() - 1
    gradients = []
    for density in (None, fixed):
        moved = positions.clone().requires_grad_()
        out = soap(moved, *args[1:], density=density)
        scalar = (out["invariant"].sum() + (out["vector"] ** 2).sum()
                  + out["tensor"].sum())
        gradients.append(torch.autograd.grad(scalar, moved)[0])
    torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="radial_scaling_scope"):
        soap(*args, density=SOAPFeatures(SMALL).fixed_density(*args))
    with pytest.raises(ConfigError, match="radial_scaling_scope"):
        DescriptorSettings(radial_scaling_scope="energy")


def test_bessel_radial_basis_matches_featomic_and_keeps_symmetry_and_gradients(two_structures):
    """The splined Bessel basis: invariants equal featomic's own SoapPowerSpectrum of the
    same hypers, are unchanged by a rotation, and their position gradient matches central
    differences; vectors rotate as vectors."""
    settings = {**SMALL, "max_radial": 2, "radial_basis": "bessel",
                "radial_scaling": [3.0, 6]}
    soap = SOAPFeatures(settings)
    args = batch(list(two_structures))
    positions, numbers, cell, pbc, index = args
    ours = soap(*args)
    invariant = featomic_features(soap, *args)[0]  # the invariants use the Bessel hypers
    assert float(invariant.abs().max()) > 0.05
    torch.testing.assert_close(ours["invariant"], invariant, rtol=0, atol=1e-13)
    rotation = torch.tensor(random_rotation(np.random.default_rng(5)))
    turned = soap(positions @ rotation.T, numbers, cell, pbc, index)
    torch.testing.assert_close(turned["invariant"], ours["invariant"], rtol=0, atol=1e-10)
    torch.testing.assert_close(turned["vector"],
                               torch.einsum("ab,nbf->naf", rotation, ours["vector"]),
                               rtol=0, atol=1e-10)
    weights = torch.randn(ours["invariant"].shape, generator=torch.Generator().manual_seed(3),
                          dtype=torch.float64)
    moving = positions.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(
        (soap(moving, numbers, cell, pbc, index)["invariant"] * weights).sum(), moving)
    h = 1e-5
    for atom, axis in ((0, 2), (4, 0)):
        shifted = [positions.clone(), positions.clone()]
        shifted[0][atom, axis] += h
        shifted[1][atom, axis] -= h
        up, down = (float((soap(x, numbers, cell, pbc, index)["invariant"] * weights).sum())
                    for x in shifted)
        assert float(gradient[atom, axis]) == pytest.approx((up - down) / (2 * h), rel=1e-6,
                                                            abs=1e-8)
    with pytest.raises(ConfigError, match="radial_basis"):
        DescriptorSettings(radial_basis="slater")
