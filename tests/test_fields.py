"""External fields: time profiles, analytic and gridded non-uniform fields, configs."""

import math

import numpy as np
import pytest
import torch
import yaml

from fieldforce.errors import ConfigError, DataError
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

K_E = 14.399645  # eV·Å/e², the value DESIGN.md quotes (independent of fieldforce.units)


def _positions(n=5, seed=0, low=-2.5, high=2.5):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform(low, high, size=(n, 3)), dtype=torch.float64)


def _fd_jacobian(field, r, h):
    """J[n, a, b] = dE_a/dr_b at atom n by central differences (each atom moved alone)."""
    jac = torch.zeros(r.shape[0], 3, 3, dtype=r.dtype)
    for b in range(3):
        step = torch.zeros(3, dtype=r.dtype)
        step[b] = h
        jac[:, :, b] = (field(r + step) - field(r - step)) / (2 * h)
    return jac


def _autograd_jacobian(field, r):
    r = r.clone().requires_grad_(True)
    e = field(r)
    rows = [torch.autograd.grad(e[:, a].sum(), r, retain_graph=True)[0] for a in range(3)]
    return torch.stack(rows, 1)  # atoms are independent, so the sum gives each atom's row


# --- time profiles of uniform fields ------------------------------------------------------


def test_uniform_field_is_the_vector_everywhere_and_its_potential_is_minus_e_dot_r():
    field = UniformField([0.01, -0.02, 0.05])
    r = _positions().to(torch.float32)
    e = field(r, time_fs=123.0)
    assert e.shape == (5, 3) and e.dtype == torch.float32
    assert torch.allclose(e, torch.tensor([[0.01, -0.02, 0.05]] * 5))
    assert field.is_uniform
    phi = field.potential(r.double())
    assert torch.allclose(phi, -(r.double() * torch.tensor([0.01, -0.02, 0.05],
                                                           dtype=torch.float64)).sum(1))


def test_ramp_is_linear_between_start_and_end_and_constant_outside():
    start, end = np.array([0.0, 0.0, 0.1]), np.array([0.2, 0.0, -0.1])
    field = RampField(start, end, duration_fs=400.0, start_fs=100.0)
    for t in (0.0, 100.0, 150.0, 300.0, 500.0, 2000.0):
        frac = min(max((t - 100.0) / 400.0, 0.0), 1.0)
        expected = start + frac * (end - start)
        assert np.allclose(field.uniform_value(t).numpy(), expected, atol=1e-15)
    assert np.allclose(field(_positions(), 200.0).numpy(), start + 0.25 * (end - start))


def test_sinusoid_by_period_and_by_frequency():
    amp = np.array([0.0, 0.03, 0.0])
    by_period = SinusoidalField(amp, period_fs=50.0, phase=0.3)
    by_freq = SinusoidalField(amp, frequency_thz=20.0, phase=0.3)  # 20 THz <-> 50 fs
    for t in (0.0, 7.0, 12.5, 33.3, 101.0):
        expected = amp * np.sin(2 * np.pi * t / 50.0 + 0.3)
        assert np.allclose(by_period.uniform_value(t).numpy(), expected, atol=1e-15)
        assert np.allclose(by_freq.uniform_value(t).numpy(), expected, atol=1e-15)
    with pytest.raises(ConfigError, match="exactly one"):
        SinusoidalField(amp)


def test_pulse_envelope_and_carrier():
    amp = np.array([0.1, 0.0, 0.0])
    plain = PulseField(amp, center_fs=200.0, width_fs=30.0)
    carrier = PulseField(amp, center_fs=200.0, width_fs=30.0, period_fs=20.0)
    for t in (0.0, 170.0, 200.0, 215.0, 260.0):
        envelope = np.exp(-((t - 200.0) ** 2) / (2 * 30.0**2))
        assert np.allclose(plain.uniform_value(t).numpy(), amp * envelope, atol=1e-15)
        assert np.allclose(carrier.uniform_value(t).numpy(),
                           amp * envelope * np.cos(2 * np.pi * (t - 200.0) / 20.0), atol=1e-15)
    # At one width from the centre the envelope is exp(-1/2) of the peak.
    ratio = plain.uniform_value(230.0)[0] / plain.uniform_value(200.0)[0]
    assert float(ratio) == pytest.approx(math.exp(-0.5), rel=1e-12)


# --- point charge -------------------------------------------------------------------------


def test_point_charge_obeys_coulomb_law():
    field = PointChargeField(charge=-2.0, center=[1.0, 0.0, 0.0])
    r = torch.tensor([[1.0, 0.0, 3.0]], dtype=torch.float64)  # 3 Å above the charge
    e = field(r)[0]
    # Force on a +1 e test charge: attraction towards the -2 e charge, k q / d^2.
    assert torch.allclose(e, torch.tensor([0.0, 0.0, -2.0 * K_E / 9.0], dtype=torch.float64),
                          rtol=1e-6)
    assert float(field.potential(r)[0]) == pytest.approx(-2.0 * K_E / 3.0, rel=1e-6)


def test_point_charge_field_is_minus_gradient_of_potential_and_divergence_and_curl_free():
    field = PointChargeField(charge=1.5, center=[0.3, -0.2, 0.1], softening=0.0)
    r = _positions(6, seed=1) + torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)  # away
    h = 1e-4
    grad_fd = torch.stack([(field.potential(r + h * ax) - field.potential(r - h * ax)) / (2 * h)
                           for ax in torch.eye(3, dtype=torch.float64)], 1)
    e = field(r)
    assert torch.allclose(e, -grad_fd, rtol=1e-7, atol=1e-9)
    jac = _fd_jacobian(field, r, h)
    scale = jac.abs().amax()
    divergence = jac.diagonal(dim1=1, dim2=2).sum(-1)
    curl = jac - jac.transpose(1, 2)
    assert divergence.abs().max() < 1e-6 * scale
    assert curl.abs().max() < 1e-6 * scale
    assert torch.allclose(_autograd_jacobian(field, r), jac, rtol=1e-6, atol=1e-8 * scale)


def test_softened_point_charge_is_finite_at_the_charge_and_still_a_gradient():
    field = PointChargeField(charge=1.0, center=[0.0, 0.0, 0.0], softening=0.5)
    r = torch.tensor([[0.0, 0.0, 0.0], [0.2, -0.1, 0.3]], dtype=torch.float64,
                     requires_grad=True)
    phi = field.potential(r)
    assert float(phi[0].detach()) == pytest.approx(K_E / 0.5, rel=1e-6)
    (grad,) = torch.autograd.grad(phi.sum(), r)
    assert torch.allclose(field(r.detach()), -grad, rtol=1e-12)


# --- gridded potential --------------------------------------------------------------------

_CENTRES = np.array([[0.5, -0.3, 0.2], [-0.8, 0.6, -0.4]])
_HEIGHTS = np.array([1.2, -0.7])  # V
_SIGMA = 0.9  # Å


def _gaussian_potential(points):
    """phi(r) = sum_k a_k exp(-|r - c_k|^2 / 2 s^2) in V, and E = -grad phi in V/Å."""
    d = points[:, None, :] - _CENTRES[None]
    g = _HEIGHTS * np.exp(-(d**2).sum(-1) / (2 * _SIGMA**2))
    return g.sum(1), (g[..., None] * d).sum(1) / _SIGMA**2


def _gaussian_grid(spacing, half_width=3.0):
    axis = np.arange(-half_width, half_width + 1e-9, spacing)
    mesh = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    phi = _gaussian_potential(mesh)[0].reshape(len(axis), len(axis), len(axis))
    return GriddedField([-half_width] * 3, spacing, phi)


def test_gridded_field_converges_to_the_analytic_field_when_the_grid_is_refined():
    r = _positions(200, seed=2, low=-2.9, high=2.9)
    exact = _gaussian_potential(r.numpy())[1]
    errors = [np.abs(_gaussian_grid(h)(r).numpy() - exact).max() for h in (0.5, 0.25)]
    assert errors[1] < 2e-3 * np.abs(exact).max()
    order = math.log2(errors[0] / errors[1])
    assert order > 2.5, f"field error {errors} converges with order {order:.2f}"


def test_gridded_potential_interpolates_the_samples_and_the_field_is_its_gradient():
    field = _gaussian_grid(0.5)
    nodes = torch.tensor([[-3.0, -3.0, -3.0], [0.5, -1.0, 2.0], [3.0, 3.0, 3.0]],
                         dtype=torch.float64)
    assert np.allclose(field.potential(nodes).numpy(), _gaussian_potential(nodes.numpy())[0],
                       atol=1e-12)
    r = _positions(20, seed=3).requires_grad_(True)
    (grad,) = torch.autograd.grad(field.potential(r).sum(), r)
    assert torch.allclose(field(r.detach()), -grad, rtol=1e-10, atol=1e-12)


def test_gridded_field_is_curl_free_and_its_position_derivatives_match_finite_differences():
    field = _gaussian_grid(0.5)
    r = _positions(20, seed=4)
    jac = _autograd_jacobian(field, r)
    scale = jac.abs().amax()
    assert scale > 0.1  # the Gaussians give a genuinely non-uniform field here
    assert torch.allclose(jac, _fd_jacobian(field, r, 1e-5), atol=1e-7 * scale)
    # Exactly curl-free (not just to interpolation error) because E = -grad of one phi.
    assert (jac - jac.transpose(1, 2)).abs().max() < 1e-12 * scale


def test_gridded_field_and_its_derivative_are_continuous_across_cell_boundaries():
    field = _gaussian_grid(0.5)
    # Points straddling the planes x = 0.5, y = -1.0 and z = 1.5 (all grid planes).
    base = torch.tensor([[0.5, 0.37, -0.61], [1.13, -1.0, 0.22], [-0.4, 0.9, 1.5]],
                        dtype=torch.float64)
    eps = 1e-9
    for axis in range(3):
        shift = torch.zeros(3, dtype=torch.float64)
        shift[axis] = eps
        point = base[axis:axis + 1]
        below, above = point - shift, point + shift
        assert torch.allclose(field(below), field(above), atol=1e-7)
        assert torch.allclose(_autograd_jacobian(field, below),
                              _autograd_jacobian(field, above), atol=1e-6)


def test_gridded_field_from_a_point_charge_potential_matches_the_point_charge_field():
    charge = PointChargeField(charge=1.0, center=[0.0, 0.0, -6.0])
    axis = np.arange(-2.0, 2.0 + 1e-9, 0.25)
    mesh = torch.tensor(np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3))
    phi = charge.potential(mesh).numpy().reshape(len(axis), len(axis), len(axis))
    grid = GriddedField([-2.0] * 3, [0.25] * 3, phi)
    r = _positions(50, seed=5, low=-1.9, high=1.9)
    assert torch.allclose(grid(r), charge(r), rtol=1e-4, atol=1e-5)


def test_atom_outside_the_grid_is_an_error_unless_clamped():
    field = _gaussian_grid(0.5)
    r = torch.tensor([[0.0, 0.0, 0.0], [0.0, 3.2, 0.0]], dtype=torch.float64)
    with pytest.raises(DataError, match="atom 1 .*outside the potential grid"):
        field(r)
    clamped = GriddedField(field.origin, field.spacing, field.potential_grid, outside="clamp")
    on_edge = torch.tensor([[0.0, 3.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(clamped(r)[1:], clamped(on_edge))


# --- configs and files --------------------------------------------------------------------


def _all_fields():
    return [
        UniformField([0.0, 0.0, 0.1]),
        RampField([0.0, 0.0, 0.0], [0.1, 0.0, 0.2], duration_fs=1000.0, start_fs=50.0),
        SinusoidalField([0.0, 0.05, 0.0], frequency_thz=10.0, phase=0.5),
        PulseField([0.1, 0.0, 0.0], center_fs=100.0, width_fs=20.0, period_fs=8.0),
        PulseField([0.1, 0.0, 0.0], center_fs=100.0, width_fs=20.0),
        PointChargeField(charge=2.0, center=[0.0, 0.0, 9.0], softening=0.1),
        _gaussian_grid(1.0),
    ]


@pytest.mark.parametrize("field", _all_fields(), ids=lambda f: type(f).__name__)
def test_to_dict_round_trips_through_yaml(field):
    config = yaml.safe_load(yaml.safe_dump(field.to_dict()))
    again = ExternalField.from_config(config)
    assert type(again) is type(field)
    assert again.to_dict() == field.to_dict()
    r = _positions(4, seed=6)
    for t in (0.0, 90.0, 433.0):
        assert torch.equal(again(r, t), field(r, t))


def test_grid_field_from_npz_with_path_relative_to_base_dir(tmp_path):
    field = _gaussian_grid(1.0)
    field.save_npz(tmp_path / "tip.npz")
    loaded = ExternalField.from_config({"type": "grid", "file": "tip.npz"}, base_dir=tmp_path)
    r = _positions(4, seed=7)
    assert torch.equal(loaded(r), field(r))
    again = ExternalField.from_config(loaded.to_dict())
    assert torch.equal(again(r), field(r))


def test_npz_with_missing_key_names_the_key_and_the_file(tmp_path):
    path = tmp_path / "field.npz"
    np.savez(path, origin=np.zeros(3), potential=np.zeros((4, 4, 4)))
    with pytest.raises(DataError, match=r"field\.npz.*'spacing'") as info:
        GriddedField.from_npz(path)
    assert "origin" not in str(info.value).split("missing")[0]
    np.savez(path, origin=np.zeros(2), spacing=np.ones(3), potential=np.zeros((4, 4, 4)))
    with pytest.raises(DataError, match=r"field\.npz.*'origin'.*3 numbers"):
        GriddedField.from_npz(path)
    np.savez(path, origin=np.zeros(3), spacing=np.ones(3), potential=np.zeros((4, 4)))
    with pytest.raises(DataError, match=r"field\.npz.*'potential'"):
        GriddedField.from_npz(path)


def test_unknown_type_and_unknown_key_are_config_errors():
    with pytest.raises(ConfigError, match="valid types: .*static.*ramp.*grid"):
        ExternalField.from_config({"type": "laser"})
    with pytest.raises(ConfigError, match="unknown key 'vectr'"):
        ExternalField.from_config({"type": "static", "vectr": [0, 0, 1]})
    with pytest.raises(ConfigError, match="missing key 'duration_fs'"):
        ExternalField.from_config({"type": "ramp", "start": [0, 0, 0], "end": [0, 0, 1]})
    with pytest.raises(ConfigError, match="3 finite numbers"):
        ExternalField.from_config({"type": "static", "vector": [0, 1]})


def test_field_units_are_converted_in_configs():
    mv_cm = ExternalField.from_config({"type": "static", "vector": [0, 0, 1], "units": "MV/cm"})
    assert np.allclose(mv_cm.uniform_value().numpy(), [0.0, 0.0, 0.01], atol=1e-15)
    gv_m = ExternalField.from_config({"type": "ramp", "start": [0, 0, 0], "end": [1, 0, 0],
                                      "duration_fs": 10, "units": "GV/m"})
    assert np.allclose(gv_m.uniform_value(100.0).numpy(), [0.1, 0.0, 0.0], atol=1e-15)
    with pytest.raises(ConfigError, match="'units'"):
        ExternalField.from_config({"type": "static", "vector": [0, 0, 1], "units": "eV"})


# --- as_field and AnalyticField -----------------------------------------------------------


def test_as_field_turns_user_values_into_fields():
    r = _positions(3, seed=8)
    assert as_field(None) is None
    point = PointChargeField(1.0, [0.0, 0.0, 5.0])
    assert as_field(point) is point
    assert torch.equal(as_field(torch.tensor([0.0, 0.1, 0.0], dtype=torch.float64))(r),
                       torch.tensor([[0.0, 0.1, 0.0]] * 3, dtype=torch.float64))

    def ramp_in_time(t):
        return [0.0, 0.0, 1e-3 * t]

    timed = as_field(ramp_in_time)
    assert timed.is_uniform
    assert torch.allclose(timed.uniform_value(20.0), torch.tensor([0.0, 0.0, 0.02],
                                                                  dtype=torch.float64))
    assert torch.allclose(timed(r, 20.0)[:, 2], torch.full((3,), 0.02, dtype=torch.float64))

    def gradient_field(positions, t):  # E = -grad(x^2 / 2) = (-x, 0, 0)
        return torch.stack([-positions[:, 0], 0 * positions[:, 1], 0 * positions[:, 2]], 1)

    spatial = as_field(gradient_field)
    assert isinstance(spatial, AnalyticField) and not spatial.is_uniform
    assert torch.equal(spatial(r)[:, 0], -r[:, 0])
    jac = _autograd_jacobian(spatial, r)
    assert torch.allclose(jac[:, 0, 0], torch.full((3,), -1.0, dtype=torch.float64))
    with pytest.raises(TypeError, match="not uniform"):
        spatial.uniform_value(0.0)
    with pytest.raises(ConfigError, match="cannot be written"):
        spatial.to_dict()
    with pytest.raises(ConfigError, match="3 finite numbers"):
        as_field([1.0, 2.0])
