"""Charge equilibration: the solver against the two-site closed form, the minimum and the
chemical potential, conductor vs insulator far apart; the qeq family's forces, Born
charges and polarizability against finite differences, charged and periodic structures,
files, training and configuration errors."""

import json
import math

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms

from fieldforce import units
from fieldforce.data.batch import batch_from_atoms, collate
from fieldforce.data.frame import Frame
from fieldforce.electrostatics import CoulombOperator, equilibrate, fragments
from fieldforce.errors import ConfigError, DataError
from fieldforce.models import QEqModel, build_model, evaluate, load_model, save_model
from finite_differences import position_derivative

SMALL = {"family": "qeq", "descriptor": {"max_radial": 3, "max_angular": 2, "cutoff": 3.5},
         "hidden": [16], "species": [1, 8]}
FIELD = np.array([0.05, -0.08, 0.1])  # V/Å
KE = units.COULOMB_CONSTANT

pytestmark = pytest.mark.usefixtures("one_thread")


def t(x):
    return torch.as_tensor(np.asarray(x, dtype=float))


def solve(positions, chi, hardness, widths, groups, group_charges, responses=None):
    op = CoulombOperator(t(positions), widths=t(widths))
    return equilibrate(op, t(chi), t(hardness), t(widths), torch.as_tensor(groups),
                       t(group_charges), None if responses is None else t(responses))


# -- the solver ------------------------------------------------------------------------


def test_two_sites_match_the_closed_form():
    """q = -(chi1 - chi2) / (H11 + H22 - 2 H12) for a neutral pair of Gaussian charges."""
    r, w = 2.3, np.array([0.7, 1.1])
    chi, hard = np.array([1.5, -0.4]), np.array([4.0, 6.0])
    eq = solve([[0, 0, 0], [0, 0, r]], chi, hard, w, [0, 0], [0.0])
    self_ = KE / (math.sqrt(math.pi) * w)
    coupling = KE * math.erf(r / (math.sqrt(2) * math.hypot(*w))) / r
    q = -(chi[0] - chi[1]) / (hard.sum() + self_.sum() - 2 * coupling)
    np.testing.assert_allclose(eq.charges.numpy(), [q, -q], rtol=1e-12)
    energy = (chi[0] - chi[1]) * q + 0.5 * q**2 * (hard.sum() + self_.sum() - 2 * coupling)
    assert float(eq.energy) == pytest.approx(energy, rel=1e-12)


def test_the_solution_is_the_constrained_minimum_and_mu_is_dE_dQ():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 6, (7, 3))
    chi, hard, w = rng.normal(size=7), rng.uniform(2, 8, 7), rng.uniform(0.5, 1.2, 7)
    groups = np.array([0, 0, 0, 1, 1, 1, 1])
    eq = solve(pos, chi, hard, w, groups, [0.3, -1.0])
    q = eq.charges.numpy()
    assert q[:3].sum() == pytest.approx(0.3, abs=1e-12)
    assert q[3:].sum() == pytest.approx(-1.0, abs=1e-12)
    op = CoulombOperator(t(pos), widths=t(w))
    h = op.matrix().numpy() + np.diag(hard + KE / (math.sqrt(math.pi) * w))

    def energy(charges):
        return chi @ charges + 0.5 * charges @ h @ charges

    for _ in range(5):  # any move that keeps the group charges raises the energy
        step = rng.normal(size=7)
        step[:3] -= step[:3].mean()
        step[3:] -= step[3:].mean()
        assert energy(q + 1e-3 * step) > energy(q)
    # the chemical potential of each group: dE*/dQ_g
    for g in range(2):
        plus, minus = [0.3, -1.0], [0.3, -1.0]
        plus[g] += 1e-5
        minus[g] -= 1e-5
        plus = solve(pos, chi, hard, w, groups, plus)
        minus = solve(pos, chi, hard, w, groups, minus)
        fd = float(plus.energy - minus.energy) / 2e-5
        assert float(eq.chemical_potential[g]) == pytest.approx(fd, rel=1e-6)


def _two_waters(distance: float) -> Atoms:
    water = Atoms("OH2", positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
    far = water.copy()
    far.positions += [0, 0, distance]
    return water + far


def test_insulator_fragments_keep_charge_while_a_conductor_transfers_it():
    """Two molecules 20 Å apart in a field along their axis: one constraint lets charge
    flow between them (polarizability ~ d²/(2 H_eff), growing with the distance); one per
    fragment keeps both neutral and their polarizability that of two molecules."""
    polar = {}
    for distance in (10.0, 20.0):
        atoms = _two_waters(distance)
        index = fragments(atoms.numbers, atoms.positions, np.zeros((3, 3)), [False] * 3)
        assert index.tolist() == [0, 0, 0, 1, 1, 1]
        n = len(atoms)
        chi, hard, w = np.array([2.0, -1.0, -1.0] * 2), np.full(n, 5.0), np.full(n, 0.7)
        pos = atoms.positions
        phi = -(pos @ np.array([0, 0, 0.5]))  # -E.r, 0.5 V/Å along the axis
        for mode, groups, q0 in (("conductor", np.zeros(n, int), [0.0]),
                                 ("insulator", index, [0.0, 0.0])):
            eq = solve(pos, chi + phi, hard, w, groups, q0, responses=pos)
            q = eq.charges.numpy()
            alpha = (pos.T @ eq.response.numpy())
            assert np.allclose(alpha, alpha.T, atol=1e-10)
            assert np.linalg.eigvalsh(alpha).min() > -1e-10  # S is positive semi-definite
            polar[mode, distance] = alpha[2, 2]
            if mode == "insulator":
                assert abs(q[:3].sum()) < 1e-12 and abs(q[3:].sum()) < 1e-12
            else:
                assert q[:3].sum() < -0.05  # electrons flow up the field's potential
    ratio = polar["conductor", 20.0] / polar["conductor", 10.0]
    assert 3.0 < ratio < 4.5  # ~ (20/10)² for a conductor
    assert polar["insulator", 20.0] == pytest.approx(polar["insulator", 10.0], rel=0.05)
    assert polar["conductor", 20.0] > 50 * polar["insulator", 20.0]


def test_fragments_follow_bonds_through_periodic_images():
    atoms = Atoms("H2", positions=[[0.1, 0, 0], [4.6, 0, 0]], cell=[5, 5, 5], pbc=True)
    assert fragments(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc).tolist() \
        == [0, 0]
    apart = atoms.copy()
    apart.pbc = False
    assert fragments(apart.numbers, apart.positions, apart.cell.array, apart.pbc).tolist() \
        == [0, 1]


def test_solver_input_errors():
    with pytest.raises(DataError, match="groups must be"):
        solve([[0, 0, 0], [0, 0, 2]], [0, 1], [5, 5], [0.7, 0.7], [0, 2], [0.0])
    with pytest.raises(DataError, match="widths > 0"):
        op = CoulombOperator(t([[0, 0, 0], [0, 0, 2]]))
        equilibrate(op, t([0, 1]), t([5, 5]), t([0.0, 0.7]), torch.tensor([0, 0]), t([0.0]))


# -- the model ---------------------------------------------------------------------------


def of_type(water, kind):
    return [f for f in water if f.atoms.info.get("config_type") == kind]


@pytest.fixture(scope="module")
def frames(water):
    return of_type(water, "dimer")[:6]


@pytest.fixture(scope="module")
def model(frames):
    torch.manual_seed(0)
    m = build_model(SMALL)
    m.fit_statistics(frames)
    with torch.no_grad():  # random, not small, electronegativities: sizeable charges
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


def plain(frames, k=0) -> Atoms:
    atoms = frames[k].atoms.copy()
    atoms.info = {}
    return atoms


def test_forces_in_a_field_are_minus_the_energy_gradient(model, frames):
    atoms = plain(frames, 1)
    field = torch.tensor(FIELD)
    out = evaluate(model, batch_from_atoms(atoms), field=field)
    assert out["charges"].abs().max() > 0.05

    def energy(moved):
        return float(evaluate(model, batch_from_atoms(moved), field=field,
                              forces=False)["energy"].detach())

    for atom, axis in ((0, 2), (1, 0), (5, 1)):
        fd = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-7)


def test_polarizability_and_dipole_are_field_derivatives(model, frames):
    """alpha from the solve equals d mu / dE by finite differences; mu = -dU/dE."""
    batch = batch_from_atoms(plain(frames, 2))
    field = torch.tensor(FIELD)
    out = evaluate(model, batch, field=field, forces=False)
    h = 1e-4
    for b in range(3):
        step = h * torch.eye(3, dtype=torch.float64)[b]
        plus = evaluate(model, batch, field=field + step, forces=False)
        minus = evaluate(model, batch, field=field - step, forces=False)
        fd_alpha = (plus["dipole"] - minus["dipole"])[0] / (2 * h)
        assert torch.allclose(out["polarizability"][0, :, b], fd_alpha, rtol=1e-6, atol=1e-9)
        fd_mu = -(plus["energy"] - minus["energy"]).detach()[0] / (2 * h)
        assert float(out["dipole"][0, b].detach()) == pytest.approx(float(fd_mu), rel=1e-6)
    assert np.linalg.eigvalsh(out["polarizability"][0].detach().numpy()).min() > 0


def test_born_charges_are_dipole_derivatives_and_sum_to_the_net_charge(model, frames):
    atoms = plain(frames, 3)
    atoms.info["total_charge"] = 1.0
    frame = Frame(atoms, {"total_charge": np.array(1.0)})
    batch = collate([frame])
    out = evaluate(model, batch, born_charges=True)
    assert float(out["charges"].sum()) == pytest.approx(1.0, abs=1e-12)
    total = out["born_charges"].sum(0)
    assert torch.allclose(total, torch.eye(3, dtype=torch.float64), atol=1e-10)

    def dipole(moved):
        f = Frame(moved, {"total_charge": np.array(1.0)})
        return evaluate(model, collate([f]), forces=False)["dipole"][0].detach().numpy()

    for atom, axis in ((0, 1), (4, 2)):
        fd = position_derivative(dipole, atoms, atom, axis, 1e-5)
        np.testing.assert_allclose(out["born_charges"][atom, :, axis].detach().numpy(), fd,
                                   rtol=1e-6, atol=1e-8)


def test_periodic_forces_stress_and_the_field_refusal(model, water):
    trimer = of_type(water, "trimer")[0].atoms
    cell = np.array([[7.0, 0, 0], [1.2, 7.5, 0], [-0.8, 0.6, 7.2]])
    atoms = Atoms(trimer.numbers[:6], positions=trimer.positions[:6] + 1.0, cell=cell,
                  pbc=True)
    atoms.wrap()
    batch = batch_from_atoms(atoms)
    out = evaluate(model, batch, stress=True)

    def energy(moved):
        return float(evaluate(model, batch_from_atoms(moved), forces=False)["energy"].detach())

    for atom, axis in ((0, 0), (3, 2)):
        fd = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-5, abs=1e-7)
    values = []
    for sign in (1, -1):
        strained = atoms.copy()
        deform = np.eye(3)
        deform[0, 1] += sign * 1e-5
        strained.set_cell(cell @ deform, scale_atoms=True)
        values.append(energy(strained))
    fd = (values[0] - values[1]) / 2e-5 / abs(np.linalg.det(cell))
    assert float(out["stress"][0, 0, 1]) == pytest.approx(fd, rel=1e-5, abs=1e-8)
    with pytest.raises(ConfigError, match="no equilibrium in a uniform field"):
        evaluate(model, batch, field=torch.tensor(FIELD))


def test_a_periodic_insulator_in_a_field_couples_through_whole_molecules(frames, water):
    """Each molecule neutral, the field's potential taken on whole molecules: the energy
    does not depend on which periodic image an atom is wrapped to, forces are its
    gradient, and the polarizability is the field derivative of sum_m mu_m."""
    torch.manual_seed(1)
    m = build_model({**SMALL, "conduction": "insulator"})
    m.fit_statistics(frames)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    m.eval()
    trimer = of_type(water, "trimer")[0].atoms
    cell = np.array([[7.0, 0, 0], [1.2, 7.5, 0], [-0.8, 0.6, 7.2]])
    atoms = Atoms(trimer.numbers, positions=trimer.positions + 0.3, cell=cell, pbc=True)
    field = torch.tensor(FIELD)

    def run(a, e=field, **kw):
        return evaluate(m, batch_from_atoms(a), field=e, **kw)

    out = run(atoms)
    moved = atoms.copy()  # one hydrogen to another periodic image
    moved.positions[1] += cell[0] - cell[2]
    torch.testing.assert_close(run(moved, forces=False)["energy"], out["energy"],
                               rtol=0, atol=1e-10)

    def energy(a):
        return float(run(a, forces=False)["energy"].detach())

    for atom, axis in ((0, 2), (4, 0)):
        fd = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert float(out["forces"][atom, axis]) == pytest.approx(-fd, rel=1e-6, abs=1e-7)
    _, unwrap, infinite = fragments(atoms.numbers, atoms.positions, cell, atoms.pbc,
                                    whole=True)
    assert not infinite.any()
    whole = torch.as_tensor(atoms.positions + unwrap @ cell)

    def dipole(e):
        return run(atoms, e, forces=False)["charges"].detach() @ whole

    h = 1e-4
    for b in range(3):
        step = h * torch.eye(3, dtype=torch.float64)[b]
        fd = (dipole(field + step) - dipole(field - step)) / (2 * h)
        torch.testing.assert_close(out["polarizability"][0, :, b].detach(), fd, rtol=1e-6,
                                   atol=1e-9)
    chain = Atoms("H4", positions=[[0.35 + 0.7 * k, 1, 1] for k in range(4)],
                  cell=[2.8, 6, 6], pbc=True)
    with pytest.raises(ConfigError, match="spans the periodic cell"):
        run(chain)


def test_calculator_in_a_point_charge_field_gives_gradient_forces(model, frames):
    """A non-uniform field enters through its potential at the atoms (chi + phi_ext):
    the calculator's forces are minus the gradient of its energy, and the charges move
    toward a positive point charge."""
    from fieldforce.fields import PointChargeField
    from fieldforce.simulation.calculator import FieldForceCalculator

    atoms = plain(frames, 4)
    center = atoms.positions.mean(0) + [4.0, 1.0, -1.0]

    def calculator(charge):
        return FieldForceCalculator(model, efield=PointChargeField(charge, center))

    atoms.calc = calculator(1.0)
    forces = atoms.get_forces()

    def energy(moved):
        moved.calc = calculator(1.0)
        return moved.get_potential_energy()

    for atom, axis in ((0, 0), (2, 1)):
        fd = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert forces[atom, axis] == pytest.approx(-fd, rel=1e-5, abs=1e-6)
    near = np.linalg.norm(atoms.positions - center, axis=1).argsort()[:3]
    without = atoms.copy()
    without.calc = calculator(0.0)
    shift = atoms.get_charges() - without.get_charges()
    assert shift[near].sum() < 0 and abs(shift.sum()) < 1e-12


def test_insulator_mode_keeps_molecules_neutral_and_refuses_ambiguous_charge(frames):
    torch.manual_seed(0)
    m = build_model({**SMALL, "conduction": "insulator"})
    m.fit_statistics(frames)
    atoms = plain(frames, 0)
    out = evaluate(m, batch_from_atoms(atoms), field=torch.tensor(FIELD), forces=False)
    index = fragments(atoms.numbers, atoms.positions, np.zeros((3, 3)), [False] * 3)
    assert index.max() == 1
    for g in range(2):
        assert abs(float(out["charges"][torch.as_tensor(index == g)].sum())) < 1e-12
    charged = collate([Frame(atoms, {"total_charge": np.array(1.0)})])
    with pytest.raises(DataError, match="over 2 fragments"):
        evaluate(m, charged, forces=False)


def test_save_load_round_trip_and_bad_config(model, frames, tmp_path):
    again = load_model(save_model(model, tmp_path / "qeq.pt"))
    assert isinstance(again, QEqModel) and again.config == model.config
    batch = collate(frames[:2])
    a = evaluate(model, batch, field=torch.tensor(FIELD), born_charges=True)
    b = evaluate(again, batch, field=torch.tensor(FIELD), born_charges=True)
    for key in ("energy", "forces", "charges", "polarizability", "born_charges"):
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(ConfigError, match="conduction"):
        build_model({**SMALL, "conduction": "metal"})


def test_training_on_dipoles_polarizabilities_born_charges_and_eval_scores_them(water, tmp_path):
    from fieldforce.cli.main import main
    from fieldforce.data.io import write_frames

    write_frames(of_type(water, "dimer")[:12], tmp_path / "train.xyz")
    cfg = {"data": {"train": "train.xyz", "valid_fraction": 0.25},
           "model": {k: v for k, v in SMALL.items() if k != "species"},
           "training": {"max_epochs": 3, "batch_size": 6, "learning_rate": 0.01,
                        "loss_weights": {"energy": 1.0, "forces": 10.0, "dipole": 1.0,
                                         "polarizability": 1.0, "born_charges": 1.0}},
           "output": "run"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--no-progress"]) == 0
    history = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert main(["eval", str(tmp_path / "run" / "model.pt"), str(tmp_path / "train.xyz"),
                 "--json", str(tmp_path / "e.json")]) == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    assert {"energy", "forces", "dipole", "polarizability", "born_charges"} <= set(scores)
    assert "valid_rmse_born_charges" in history[-1]


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("preconditioner", ["short-range", "jacobi"])
def test_cg_solver_and_its_implicit_derivatives_match_the_dense_solve(periodic,
                                                                      preconditioner):
    """Charges, energy, polarizability response and their first derivatives (positions,
    electronegativities) from CG + implicit differentiation equal the dense solve's,
    with either preconditioner."""
    rng = np.random.default_rng(3)
    n = 10
    cell = np.diag([9.0, 8.0, 10.0]) if periodic else None
    pos0 = rng.uniform(0, 8, (n, 3))
    chi0, hard, w = rng.normal(size=n), rng.uniform(3, 8, n), rng.uniform(0.6, 1.0, n)
    groups = torch.as_tensor(np.repeat([0, 1], n // 2))
    results = {}
    for solver in ("dense", "cg"):
        pos = t(pos0).requires_grad_(True)
        chi = t(chi0).requires_grad_(True)
        op = CoulombOperator(pos, None if cell is None else t(cell), periodic,
                             method="ewald" if periodic else "direct", accuracy=1e-10,
                             widths=t(w))
        eq = equilibrate(op, chi, t(hard), t(w), groups, t([0.5, -0.5]),
                         responses=None if periodic else pos, solver=solver, tol=1e-12,
                         preconditioner=preconditioner)
        target = eq.energy + (eq.charges * t(np.arange(n))).sum()
        if not periodic:
            target = target + (eq.response ** 2).sum()
        grads = torch.autograd.grad(target, [pos, chi])
        results[solver] = (eq.charges.detach(), eq.energy.detach(), *grads,
                           eq.chemical_potential.detach())
    for dense, cg in zip(results["dense"], results["cg"], strict=True):
        torch.testing.assert_close(cg, dense, rtol=1e-7, atol=1e-9)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        pos = t(pos0).requires_grad_(True)
        op = CoulombOperator(pos, widths=t(w))
        eq = equilibrate(op, t(chi0), t(hard), t(w), groups, t([0.0, 0.0]), solver="cg")
        (g,) = torch.autograd.grad(eq.charges @ t(np.arange(n)), pos, create_graph=True)
        torch.autograd.grad(g.sum(), pos)


def water_box() -> Atoms:
    """32 gas-phase water molecules on a loose grid in a 9.9 Å cube (96 atoms)."""
    from ase.build import molecule

    water = molecule("H2O")
    atoms = Atoms(cell=np.eye(3) * 9.9, pbc=True)
    for x in np.linspace(0, 9.9, 4, endpoint=False):
        for y in np.linspace(0, 9.9, 4, endpoint=False):
            for z in np.linspace(0, 9.9, 2, endpoint=False):
                atoms += Atoms(water.numbers, water.positions + [x, y, z + 2.5 * (x > 3)])
    return atoms


@pytest.mark.parametrize("periodic", [False, True])
def test_short_range_preconditioner_is_h_minus_the_widened_charges_coulomb_matrix(periodic):
    """M = H - A' (module docstring of the preconditioner): built from its sparse pairs, it
    equals the dense QEq matrix minus the Coulomb matrix (self terms included) of the same
    charges widened by tau, both from the Coulomb operator (direct sum, or Ewald), to its
    1e-4 truncation; and it is positive definite, above the smallest hardness."""
    from fieldforce.electrostatics.equilibration import self_hardness
    from fieldforce.electrostatics.preconditioner import short_range_matrix

    rng = np.random.default_rng(5)
    n, tau = 24, 1.2
    cell = np.diag([9.0, 8.5, 9.5])
    pos, w = t(rng.uniform(0, 8.5, (n, 3))), t(rng.uniform(0.3, 0.7, n))
    hard = t(rng.uniform(2, 6, n))
    kw = {"method": "ewald", "accuracy": 1e-10} if periodic else {"method": "direct"}
    c = t(cell) if periodic else None
    h = (CoulombOperator(pos, c, periodic, widths=w, **kw).matrix()
         + torch.diag(hard + self_hardness(w)))
    wide = (w ** 2 + tau ** 2).sqrt()
    a_wide = (CoulombOperator(pos, c, periodic, widths=wide, **kw).matrix()
              + torch.diag(self_hardness(wide)))
    m = short_range_matrix(pos, t(cell), np.full(3, periodic), w, hard, tau).toarray()
    np.testing.assert_allclose(m, (h - a_wide).numpy(), atol=2e-3)
    assert np.abs(m - m.T).max() < 1e-12
    assert np.linalg.eigvalsh(m).min() > 0.99 * float(hard.min())


def test_preconditioned_and_warm_started_cg_need_fewer_iterations():
    """A conducting water box: the short-range preconditioner converges in fewer CG
    iterations than Jacobi to the same charges, and a start from the charges of a nearby
    geometry (the previous MD step) in fewer still."""
    rng = np.random.default_rng(2)
    atoms = water_box()
    n = len(atoms)
    chi, hard = t(rng.normal(size=n)), t(np.full(n, 3.0))
    w = t(np.where(atoms.numbers == 1, 0.31, 0.66))
    groups, total = torch.zeros(n, dtype=torch.long), t([0.0])

    def run(positions, **kw):
        op = CoulombOperator(t(positions), t(atoms.cell[:]), True, method="pme",
                             accuracy=1e-6, widths=w)
        return equilibrate(op, chi, hard, w, groups, total, solver="cg", tol=1e-9, **kw)

    jacobi = run(atoms.positions, preconditioner="jacobi")
    short = run(atoms.positions)
    moved = atoms.positions + rng.normal(scale=0.005, size=(n, 3))
    cold, warm = run(moved), run(moved, initial=short.charges)
    assert short.iterations < 0.7 * jacobi.iterations
    assert warm.iterations < cold.iterations
    torch.testing.assert_close(short.charges, jacobi.charges, rtol=0, atol=1e-8)
    torch.testing.assert_close(warm.charges, cold.charges, rtol=0, atol=1e-8)
    assert run(moved, initial=cold.charges).iterations <= 1


def test_model_with_the_cg_solver_gives_the_dense_models_md_outputs(model, water):
    """Forces, Born charges and the polarizability of the cg path equal the dense ones,
    for an isolated cluster and a periodic cell."""
    trimer = of_type(water, "trimer")[0].atoms
    box = Atoms(trimer.numbers[:6], positions=trimer.positions[:6] + 1.0,
                cell=np.diag([7.0, 7.5, 7.2]), pbc=True)
    box.wrap()
    cluster = trimer.copy()
    cluster.info = {}
    cg = build_model({**model.config, "solver": "cg", "solver_tol": 1e-12})
    cg.load_state_dict(model.state_dict())
    cg.eval()
    for atoms, field in ((cluster, torch.tensor(FIELD)), (box, None)):
        batch = batch_from_atoms(atoms)
        a = evaluate(model, batch, field=field, born_charges=True)
        b = evaluate(cg, batch, field=field, born_charges=True)
        for key in ("energy", "forces", "charges", "polarizability", "born_charges"):
            torch.testing.assert_close(b[key], a[key], rtol=1e-7, atol=1e-9)


def test_warm_started_model_along_a_trajectory_gives_the_cold_models_outputs(model,
                                                                             monkeypatch):
    """The cg model started from the last steps' charges (extrapolated) gives the outputs
    of a cold start at every step of a short trajectory, in fewer CG iterations once it
    has two steps to extrapolate from."""
    import fieldforce.models.qeq as qeq_module

    box = water_box()
    velocity = np.random.default_rng(0).normal(scale=0.005, size=(len(box), 3))  # Å/step
    models = {}
    for warm in (True, False):
        m = build_model({**model.config, "solver": "cg", "solver_tol": 1e-12,
                         "solver_warm_start": warm})
        m.load_state_dict(model.state_dict())
        models[warm] = m.eval()
    iterations = {True: [], False: []}
    original = qeq_module.equilibrate

    def counted(*args, **kwargs):
        eq = original(*args, **kwargs)
        iterations[current].append(eq.iterations)
        return eq

    monkeypatch.setattr(qeq_module, "equilibrate", counted)
    for step in range(5):
        atoms = box.copy()
        atoms.positions += step * velocity
        out = {}
        for current, m in models.items():
            out[current] = evaluate(m, batch_from_atoms(atoms))
        for key in ("energy", "forces", "charges"):
            torch.testing.assert_close(out[True][key], out[False][key], rtol=0, atol=1e-7)
    assert iterations[True][0] == iterations[False][0]
    assert all(w < c for w, c in zip(iterations[True][2:], iterations[False][2:],
                                     strict=True))


def test_born_charge_and_force_loss_gradients_match_finite_differences(model, frames):
    """Training differentiates forces and Born charges (both derivatives through the
    dense solve) with respect to the weights: compare with finite differences."""
    batch = collate(frames[4:6])
    field = torch.tensor(FIELD)

    def loss():
        out = evaluate(model, batch, field=field, born_charges=True, create_graph=True)
        return (((out["born_charges"] - batch.labels["born_charges"]) ** 2).sum()
                + 1e-3 * ((out["forces"] - batch.labels["forces"]) ** 2).sum())

    for weight, index in ((model.chi_head.weight, (0, 5)), (model.hardness_raw, (1,)),
                          (model.width_log, (0,))):
        h = 1e-5
        grad = torch.autograd.grad(loss(), weight)[0][index]
        values = []
        for step in (h, -2 * h, h):
            with torch.no_grad():
                weight[index] += step
            values.append(float(loss().detach()))
        assert float(grad) == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-5)
