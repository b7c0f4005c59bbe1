"""A slab's dipole and polarizability are observables along its normal only: losses and
errors compare those components and nothing else, for any orientation of the slab."""

import numpy as np
import pytest
import torch
from ase import Atoms

from fieldforce.data.batch import collate, open_directions
from fieldforce.data.frame import Frame
from fieldforce.training.losses import label_scales, labelled_pairs, weighted_loss


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _frame(pbc, rotation, dipole, polarizability) -> Frame:
    atoms = Atoms("Cu2", positions=[[0, 0, 5], [1.2, 1.3, 6.8]], cell=[2.5, 2.6, 12.0],
                  pbc=pbc)
    atoms.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    atoms.positions = atoms.positions @ rotation.T
    return Frame(atoms, {"dipole": np.asarray(dipole, float),
                         "polarizability": np.asarray(polarizability, float)})


@pytest.mark.parametrize("seed", [0, 1])
def test_slab_compares_normal_components_only(seed):
    rot = _rotation(seed)
    normal = rot @ np.array([0, 0, 1.0])
    tangent = rot @ np.array([1.0, 0, 0])
    ref_mu, ref_alpha = 0.7 * normal, 2.0 * np.outer(normal, normal)
    slab = _frame([True, True, False], rot, ref_mu, ref_alpha)
    molecule = _frame(False, rot, [0.1, -0.2, 0.3], np.diag([1.0, 2.0, 3.0]))
    batch = collate([slab, molecule])
    # the prediction agrees with the slab's labels along the normal and differs in-plane
    # (anything there is allowed), and misses the molecule's x component by 0.5
    pred_mu = torch.stack([torch.as_tensor(ref_mu + 3.0 * tangent),
                           torch.tensor([0.6, -0.2, 0.3], dtype=torch.float64)])
    pred_alpha = torch.stack([torch.as_tensor(ref_alpha + 5.0 * np.outer(tangent, tangent)
                                              + np.outer(tangent, normal)
                                              + np.outer(normal, tangent)),
                              torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))])
    out = {"dipole": pred_mu, "polarizability": pred_alpha}
    pred, ref = labelled_pairs(batch, out, "dipole")
    assert pred.shape == (1 + 3,)  # one slab component, three molecular ones
    np.testing.assert_allclose((pred - ref).abs().numpy(), [0, 0.5, 0, 0], atol=1e-12)
    pred, ref = labelled_pairs(batch, out, "polarizability")
    assert pred.shape == (1 + 9,)
    np.testing.assert_allclose((pred - ref).abs().max().item(), 0.0, atol=1e-12)
    _, parts = weighted_loss(batch, out, ["dipole", "polarizability"],
                             {"dipole": 1.0, "polarizability": 1.0},
                             label_scales([slab, molecule]))
    assert parts["dipole"] == pytest.approx(np.sqrt(0.25 / 4))
    assert parts["polarizability"] == pytest.approx(0.0, abs=1e-12)


def test_open_directions_of_slab_wire_molecule_and_bulk():
    rot = _rotation(3)
    cell = torch.as_tensor(np.diag([2.5, 2.6, 12.0]) @ rot.T)
    for pbc, k in (([True, True, False], 1), ([True, False, False], 2),
                   ([False] * 3, 3), ([True] * 3, 3)):
        u = open_directions(cell, torch.tensor(pbc))
        assert u.shape == (3, k)
        np.testing.assert_allclose((u.T @ u).numpy(), np.eye(k), atol=1e-12)
        if 0 < sum(pbc) < 3:  # orthogonal to every periodic cell vector
            periodic = cell[torch.tensor(pbc)]
            np.testing.assert_allclose((periodic @ u).numpy(), 0.0, atol=1e-12)


def test_surface_normal_follows_the_open_cell_vector_and_refuses_non_slabs():
    from ase.build import fcc111

    from fieldforce.data.slab import surface_normal
    from fieldforce.errors import DataError

    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    assert np.allclose(surface_normal(slab), [0, 0, 1])
    flipped = slab.copy()
    flipped.set_cell(slab.cell.array * [[1], [1], [-1]])  # open vector along -z
    assert np.allclose(surface_normal(flipped), [0, 0, -1])
    # a slab along x: normal x whatever the handedness of the periodic pair
    turned = Atoms("Cu", cell=[[9, 0, 0], [0, 3, 0], [0, 0, 4]], pbc=[False, True, True])
    assert np.allclose(surface_normal(turned), [1, 0, 0])
    slab.pbc = True
    with pytest.raises(DataError, match="surface diffusion needs a slab"):
        surface_normal(slab, "surface diffusion")


def test_interior_plane_lies_in_the_gap_nearest_the_middle():
    from fieldforce.data.slab import interior_plane

    # four layers (rumpled by 0.1 Å) at 0, 2, 4, 6 Å: the middle gap is at 3 Å
    heights = np.array([0.0, 0.1, 2.0, 2.05, 4.0, 3.95, 6.0, 6.1])
    assert interior_plane(heights) == pytest.approx(0.5 * (2.05 + 3.95))
    # three layers: the middle layer's atoms are not cut; a gap beside it is taken
    assert interior_plane(np.array([0.0, 2.0, 4.0])) in (1.0, 3.0)
    assert interior_plane(np.array([1.0, 1.1])) == pytest.approx(1.05)  # one layer
