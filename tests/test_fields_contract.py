"""The field contract: depends_on_time, has_potential/potential, depends_on_atoms/update."""

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms

from fieldforce.errors import ConfigError
from fieldforce.fields import (
    AnalyticField,
    ExternalField,
    GriddedField,
    PointChargeField,
    PulseField,
    RampField,
    SinusoidalField,
    UniformField,
    as_field,
)
from fieldforce.fields.base import _REGISTRY

TIMES = (0.0, 37.5, 95.0, 150.0)  # fs; every time-dependent field below is nonzero at some


def _positions(n=6, seed=0, low=-1.4, high=1.4):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform(low, high, size=(n, 3)), dtype=torch.float64)


def _grid_config():
    """An inline grid config: a Gaussian bump in phi on [-1.5, 1.5]^3 Å, spacing 0.5 Å."""
    axis = np.arange(-1.5, 1.5 + 1e-9, 0.5)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    phi = 0.8 * np.exp(-((x - 0.3) ** 2 + (y + 0.2) ** 2 + z**2) / 1.2) + 0.05 * x
    return {"type": "grid", "origin": [-1.5, -1.5, -1.5], "spacing": [0.5, 0.5, 0.5],
            "potential": phi.tolist()}


# class, config, is_uniform, depends_on_time, has_potential
CONFIGS = {
    "static": (UniformField, {"type": "static", "vector": [0.01, -0.02, 0.05]}, True, False, True),
    "ramp": (RampField, {"type": "ramp", "start": [0.0, 0.0, 0.0], "end": [0.1, 0.02, -0.2],
              "duration_fs": 100.0, "start_fs": 10.0}, True, True, True),
    "sinusoid": (SinusoidalField, {"type": "sinusoid", "amplitude": [0.0, 0.05, 0.01],
                                   "period_fs": 40.0, "phase": 0.3}, True, True, True),
    "pulse": (PulseField, {"type": "pulse", "amplitude": [0.1, 0.0, 0.03], "center_fs": 90.0,
                           "width_fs": 30.0, "period_fs": 25.0}, True, True, True),
    "point_charge": (PointChargeField, {"type": "point_charge", "charge": -1.5,
                                        "center": [0.2, 0.1, 4.0], "softening": 0.3},
                     False, False, True),
    "grid": (GriddedField, _grid_config(), False, False, True),
}


def _static_bowl():
    """A non-uniform AnalyticField with a potential: phi = k/2 |r - c|^2 - a.r."""
    k, c = 0.3, torch.tensor([0.1, -0.2, 0.4], dtype=torch.float64)
    a = torch.tensor([0.02, 0.0, -0.01], dtype=torch.float64)

    def field(r, t):
        return -k * (r - c) + a

    def potential(r, t):
        return 0.5 * k * ((r - c) ** 2).sum(-1) - r @ a

    return AnalyticField(field, potential=potential, depends_on_time=False)


def _timed_uniform():
    return as_field(lambda t: [0.0, 0.01 * np.cos(t / 20.0), 0.02])


def _non_uniform_no_potential():
    return as_field(lambda r, t: torch.stack([r[:, 1], -r[:, 0], 0 * r[:, 2]], 1) * 0.01)


# --- flags --------------------------------------------------------------------------------


def test_the_configs_below_cover_every_registered_field_type():
    # fields that depend on the atoms are checked on their own (below, and their physics
    # in test_fem_md.py)
    assert set(CONFIGS) | {"fem"} == set(_REGISTRY)


def test_flags_and_config_round_trip_of_the_finite_element_field():
    from fieldforce.fields import FEMField

    config = {"type": "fem", "e0": 0.4, "tolerance": 0.05, "every_fs": 50.0, "gap": 12.0}
    field = ExternalField.from_config(config)
    assert type(field) is FEMField and field.depends_on_atoms is True
    assert field.is_uniform is False and field.depends_on_time is False
    assert field.has_potential is False and field.state() is None
    d = yaml.safe_load(yaml.safe_dump(field.to_dict()))
    assert ExternalField.from_config(d).to_dict() == field.to_dict()
    assert {k: d[k] for k in config} == config
    with pytest.raises(ConfigError, match="tolerance"):
        ExternalField.from_config({"type": "fem", "e0": 0.4, "tolerance": -1})


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_flags_of_fields_built_from_configs_and_via_as_field(kind):
    cls, config, uniform, timed, has_phi = CONFIGS[kind]
    for field in (ExternalField.from_config(config), as_field(config)):
        assert type(field) is cls and field.config_type == kind
        assert field.is_uniform is uniform
        assert field.depends_on_time is timed
        assert field.has_potential is has_phi
        assert field.depends_on_atoms is False


def test_flags_of_vectors_and_callables_given_to_as_field():
    vector = as_field([0.0, 0.0, 0.1])
    assert isinstance(vector, UniformField)
    assert (vector.depends_on_time, vector.has_potential, vector.depends_on_atoms) == (
        False, True, False)

    timed = _timed_uniform()
    assert isinstance(timed, AnalyticField) and timed.is_uniform
    assert timed.depends_on_time is True and timed.has_potential is True
    assert timed.depends_on_atoms is False

    spatial = _non_uniform_no_potential()
    assert not spatial.is_uniform
    assert spatial.depends_on_time is True and spatial.has_potential is False
    assert spatial.depends_on_atoms is False


def test_analytic_field_depends_on_time_defaults_to_true_and_can_be_declared_static():
    def f(r, t):
        return 0.0 * r

    assert AnalyticField(f).depends_on_time is True
    assert AnalyticField(f, uniform=True).depends_on_time is True
    static = AnalyticField(f, depends_on_time=False)
    assert static.depends_on_time is False
    assert "depends_on_time=False" in repr(static)
    assert _static_bowl().depends_on_time is False and _static_bowl().has_potential is True
    with pytest.raises(ConfigError, match="cannot be written"):
        static.to_dict()


def test_flags_do_not_leak_into_configs():
    for _, config, *_ in CONFIGS.values():
        field = ExternalField.from_config(config)
        d = yaml.safe_load(yaml.safe_dump(field.to_dict()))
        assert not {"depends_on_time", "depends_on_atoms", "has_potential"} & set(d)
        assert ExternalField.from_config(d).to_dict() == field.to_dict()


def test_base_class_defaults_are_the_safe_ones():
    class Bare(ExternalField):
        def __call__(self, positions, time_fs=0.0):
            return torch.zeros_like(positions)

    bare = Bare()
    assert bare.depends_on_time is True  # "may change": costs recomputation, never staleness
    assert bare.depends_on_atoms is False
    assert bare.has_potential is False
    with pytest.raises(NotImplementedError):
        bare.potential(_positions())
    assert bare.update(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), 5.0) is False

    class WithPotential(Bare):  # overriding potential is enough for has_potential
        def potential(self, positions, time_fs=0.0):
            return torch.zeros(positions.shape[0], dtype=positions.dtype)

    assert WithPotential().has_potential is True


# --- potential ----------------------------------------------------------------------------


def _fields_with_potential():
    fields = {kind: ExternalField.from_config(c) for kind, (_, c, *_) in CONFIGS.items()}
    fields["pulse_no_carrier"] = PulseField([0.0, 0.07, 0.02], center_fs=60.0, width_fs=40.0)
    fields["as_field_timed"] = _timed_uniform()
    fields["analytic_bowl"] = _static_bowl()
    fields["analytic_uniform_static"] = AnalyticField(
        lambda r, t: torch.tensor([[0.03, 0.0, -0.04]], dtype=r.dtype).expand(r.shape[0], 3),
        uniform=True, depends_on_time=False)
    return fields


@pytest.mark.parametrize("name", list(_fields_with_potential()))
def test_field_is_minus_autograd_gradient_of_its_potential(name):
    field = _fields_with_potential()[name]
    assert field.has_potential
    largest = 0.0
    for t in TIMES:
        r = _positions(8, seed=int(t)).requires_grad_(True)  # inside the grid's box
        phi = field.potential(r, t)
        assert phi.shape == (8,) and phi.dtype == torch.float64
        (grad,) = torch.autograd.grad(phi.sum(), r)
        e = field(r.detach(), t)
        assert torch.allclose(e, -grad, rtol=1e-10, atol=1e-10), (t, e, -grad)
        largest = max(largest, float(e.abs().max()))
    assert largest > 1e-3  # the comparison is not between zeros


def test_uniform_potential_is_zero_at_the_cartesian_origin_and_minus_e_dot_r():
    field = ExternalField.from_config(CONFIGS["sinusoid"][1])
    r = torch.cat([torch.zeros(1, 3, dtype=torch.float64), _positions(4, seed=9)])
    for t in TIMES:
        phi = field.potential(r, t)
        assert float(phi[0]) == 0.0
        assert torch.allclose(phi, -(r @ field.uniform_value(t)), rtol=1e-14, atol=0.0)


def test_analytic_field_without_a_potential_says_so_and_refuses():
    field = _non_uniform_no_potential()
    assert field.has_potential is False
    with pytest.raises(NotImplementedError, match="no electrostatic potential"):
        field.potential(_positions(), 0.0)
    explicit = AnalyticField(lambda r, t: 0.0 * r, depends_on_time=False)
    assert explicit.has_potential is False
    with pytest.raises(NotImplementedError):
        explicit.potential(_positions(), 0.0)


def test_analytic_potential_of_the_wrong_shape_is_a_config_error():
    field = AnalyticField(lambda r, t: 0.0 * r, potential=lambda r, t: 0.0 * r)
    with pytest.raises(ConfigError, match=r"potential returned shape \(6, 3\)"):
        field.potential(_positions(), 0.0)


# --- update -------------------------------------------------------------------------------


def _water_atoms():
    return Atoms("OH2", positions=[[0.1, 0.0, 0.2], [0.86, 0.59, 0.2], [-0.66, 0.59, 0.2]])


@pytest.mark.parametrize("name", list(_fields_with_potential()) + ["no_potential"])
def test_default_update_is_a_no_op_returning_false_for_built_in_fields(name):
    fields = _fields_with_potential()
    field = fields[name] if name != "no_potential" else _non_uniform_no_potential()
    atoms = _water_atoms()
    r = torch.tensor(atoms.positions, dtype=torch.float64)
    before = [field(r, t) for t in TIMES]
    assert field.depends_on_atoms is False
    for t in TIMES:
        assert field.update(atoms, t) is False
    atoms.positions += 0.5  # moving the atoms changes nothing either
    assert field.update(atoms, 0.0) is False
    assert np.allclose(atoms.positions - 0.5, _water_atoms().positions)  # atoms not modified
    for t, e in zip(TIMES, before, strict=True):
        assert torch.equal(field(r, t), e)


class CentroidSpringField(ExternalField):
    """E = k (c - r), phi = k/2 |r - c|^2, with c the atoms' centroid at the last re-solve.

    Re-solves when the centroid has moved more than ``threshold`` Å since the last solve.
    """

    depends_on_time = False
    depends_on_atoms = True

    def __init__(self, k, threshold):
        self.k, self.threshold = k, threshold
        self.center = None
        self.solves = 0

    def update(self, atoms, time_fs=0.0):
        centroid = atoms.positions.mean(0)
        if self.center is not None and np.linalg.norm(centroid - self.center) <= self.threshold:
            return False
        self.center = centroid.copy()
        self.solves += 1
        return True

    def _c(self, positions):
        if self.center is None:
            raise RuntimeError("call update(atoms, time_fs) first")
        return torch.as_tensor(self.center, dtype=positions.dtype, device=positions.device)

    def __call__(self, positions, time_fs=0.0):
        return self.k * (self._c(positions) - positions)

    def potential(self, positions, time_fs=0.0):
        return 0.5 * self.k * ((positions - self._c(positions)) ** 2).sum(-1)


class CentreOfMassHeightField(UniformField):
    """A uniform field along z whose magnitude is ``gain`` times the centre-of-mass height."""

    depends_on_atoms = True

    def __init__(self, gain):
        super().__init__([0.0, 0.0, 0.0])
        self.gain = gain

    def update(self, atoms, time_fs=0.0):
        new = np.array([0.0, 0.0, self.gain * atoms.get_center_of_mass()[2]])
        changed = not np.array_equal(new, self.vector)
        self.vector = new
        return changed


def test_atom_dependent_field_updates_as_documented():
    field = CentroidSpringField(k=0.2, threshold=0.05)
    assert (field.depends_on_atoms, field.depends_on_time, field.has_potential) == (
        True, False, True)
    atoms = _water_atoms()
    probe = _positions(5, seed=11)
    assert field.update(atoms, 0.0) is True  # first solve
    first = field(probe)
    assert field.update(atoms, 10.0) is False  # same atoms: nothing to do
    assert field.update(atoms, 10.0) is False
    assert field.solves == 1

    atoms.positions += [0.02, 0.0, 0.0]  # centroid moves 0.02 Å: below the threshold
    assert field.update(atoms, 20.0) is False
    assert torch.equal(field(probe), first)

    # Between updates the field is a fixed function of position, whatever the atoms do.
    atoms.positions += [0.0, 0.3, 0.0]
    assert torch.equal(field(probe), first)
    assert field.update(atoms, 30.0) is True
    second = field(probe)
    assert not torch.allclose(second, first)
    assert torch.allclose(second - first, torch.tensor([0.02, 0.3, 0.0],
                                                       dtype=torch.float64) * 0.2)
    assert field.solves == 2

    # The re-solved field is still E = -grad phi.
    r = probe.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(field.potential(r).sum(), r)
    assert torch.allclose(field(probe), -grad, rtol=1e-12, atol=1e-12)


def test_a_re_solve_changes_the_energy_at_fixed_positions():
    """Energy is not conserved across a re-solve: the field does work, which is reportable."""
    field = CentroidSpringField(k=0.2, threshold=0.05)
    atoms = _water_atoms()
    charges = torch.tensor([-0.8, 0.4, 0.4], dtype=torch.float64)  # neutral, dipole along y
    field.update(atoms, 0.0)
    shift = np.array([0.1, 0.4, 0.0])
    atoms.positions += shift
    r = torch.tensor(atoms.positions, dtype=torch.float64)
    energy_before = float(charges @ field.potential(r))
    assert field.update(atoms, 1.0) is True
    energy_after = float(charges @ field.potential(r))
    # sum_i q_i k/2 |r_i - c|^2 changes by -k dc.p for a neutral system, p = sum_i q_i r_i.
    dipole = (charges @ r).numpy()
    expected = -0.2 * float(shift @ dipole)
    assert abs(expected) > 1e-2
    assert energy_after - energy_before == pytest.approx(expected, rel=1e-10)


def test_subclasses_of_built_in_fields_do_not_take_over_their_config_type():
    assert _REGISTRY["static"] is UniformField
    assert ExternalField.from_config({"type": "static", "vector": [0, 0, 1]}).depends_on_atoms \
        is False
    with pytest.raises(TypeError, match="'static'.*already taken"):
        class Impostor(UniformField):
            config_type = "static"
    assert _REGISTRY["static"] is UniformField


def test_uniform_field_set_from_the_centre_of_mass_height():
    field = CentreOfMassHeightField(gain=0.01)
    assert field.is_uniform and field.depends_on_atoms and not field.depends_on_time
    atoms = _water_atoms()
    assert field.update(atoms, 0.0) is True
    z = atoms.get_center_of_mass()[2]
    assert np.allclose(field.uniform_value().numpy(), [0.0, 0.0, 0.01 * z], atol=1e-15)
    assert field.update(atoms, 5.0) is False
    atoms.positions += [0.0, 0.0, 1.0]
    assert field.update(atoms, 5.0) is True
    assert np.allclose(field.uniform_value().numpy(), [0.0, 0.0, 0.01 * (z + 1.0)], atol=1e-15)
    r = torch.tensor(atoms.positions, dtype=torch.float64)
    assert torch.allclose(field(r)[:, 2], torch.full((3,), 0.01 * (z + 1.0),
                                                     dtype=torch.float64))
