"""PySCF backend: Kohn-Sham DFT of molecules and clusters in a uniform electric field.

Field coupling (atomic units inside this module, origin at the Cartesian
origin): the external potential of a uniform field E is phi(r) = -E·r, so each
electron gets +E·r in the core Hamiltonian and the nuclei get -E·sum_A Z_A R_A.
Then U(E) = U0 - mu·E - 1/2 E·alpha·E - ..., with mu = sum_A Z_A R_A - <r>.

Forces are analytic. The field adds two terms to PySCF's nuclear gradient:
d/dR_A of E·<mu|r|nu> (basis functions move with the atoms; integral
``int1e_irp``) and -Z_A E on the nucleus; the recipe is checked against finite
differences in the tests.

Polarizability and Born effective charges are central differences in the field,
from the same two calculations per direction:
alpha_ab = [mu_a(E + h e_b) - mu_a(E - h e_b)] / 2h and
Z*_{i,ab} = [F_{i,b}(E + h e_a) - F_{i,b}(E - h e_a)] / 2h,
each of them started from the converged density at E. The error is O(h²)
(hyperpolarizability terms); h = 0.02 V/Å keeps it below 1e-4 relative for water
while staying far above the SCF noise.

Atomic ``charges`` are meta-Löwdin populations (PySCF's own analysis: Löwdin
orthogonalisation after pre-orthogonalising on free-atom ANO orbitals, nearly independent
of the basis, unlike Mulliken charges), of the density at the field asked. A frame's
own ``total_charge`` label sets its net charge (one job labels several charge states);
the ``charge`` setting is the default for frames without one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from fieldforce import units
from fieldforce.config import Section, option
from fieldforce.errors import BackendError
from fieldforce.reference.backend import Backend, check_properties, make_settings


@dataclass(kw_only=True)
class PySCFSettings(Section):
    """Level of theory and numerical settings of the PySCF backend.

    Attributes
    ----------
    xc
        exchange-correlation functional in PySCF/libxc syntax ("PBE0", "B3LYP", "PBE", "HF").
    basis
        Gaussian basis set. Use a diffuse (aug-) basis for polarizabilities.
    charge, spin
        net charge (e) and 2S.
    density_fit
        resolution of the identity for Coulomb and exchange (fast, ~1e-5 Ha error
        per molecule, consistent between energies and forces).
    grid_level
        PySCF integration grid level (0-9).
    conv_tol
        SCF energy convergence (Hartree); the density is converged to its square root
        or ``conv_tol_grad``, whichever is tighter.
    field_step
        central-difference step in the field, V/Å.
    max_cycle
        maximum SCF iterations before the frame is reported as failed.
    threads
        OpenMP threads for this process (None: PySCF's default).
    """

    xc: str = option("PBE0", "functional (PySCF/libxc syntax)")
    basis: str = option("aug-cc-pvdz", "Gaussian basis set")
    charge: int = option(0, "net charge, e, of frames without a total_charge label")
    spin: int = option(0, "2S", minimum=0)
    density_fit: bool = option(True, "resolution of the identity")
    grid_level: int = option(3, "PySCF integration grid level", minimum=0, maximum=9)
    conv_tol: float = option(1e-11, "SCF energy convergence, Hartree", exclusive_minimum=0)
    conv_tol_grad: float = option(1e-7, "SCF density convergence", exclusive_minimum=0)
    field_step: float = option(0.02, "central-difference step in the field, V/Å",
                               exclusive_minimum=0)
    max_cycle: int = option(100, "maximum SCF iterations", minimum=1)
    threads: int | None = option(None, "OpenMP threads (None: PySCF's default)", minimum=1)


class PySCFBackend(Backend):
    """Finite-field Kohn-Sham DFT with PySCF (see the module docstring)."""

    name = "pyscf"
    properties = ("energy", "forces", "dipole", "polarizability", "born_charges", "charges")
    max_field = 0.5
    max_field_reason = ("a finite Gaussian basis cannot describe field ionization, and "
                        "molecules such as water dissociate near 0.3-0.5 V/Å")
    execution_settings = ("threads",)

    def __init__(self, settings: PySCFSettings | None = None, **options) -> None:
        self.config = make_settings(PySCFSettings, settings, options, "PySCF")

    def validate(self, frames) -> None:
        """The functional is known to libxc and the basis covers every element."""
        import warnings

        from pyscf.dft import libxc
        from pyscf.gto import basis

        s = self.config
        if s.xc.upper() != "HF":
            try:
                libxc.parse_xc(s.xc)
            except (KeyError, ValueError) as exc:
                raise BackendError(f"PySCF settings: key 'xc': unknown functional {s.xc!r} "
                                   f"({exc}); use a libxc name such as PBE, PBE0, B3LYP or "
                                   "HF") from None
        symbols = sorted({sym for f in frames for sym in f.atoms.get_chemical_symbols()})
        for symbol in symbols:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    functions = basis.load(s.basis, symbol)
            except Exception:  # noqa: BLE001 - PySCF raises several types for a bad name
                functions = None
            if not functions:
                raise BackendError(f"PySCF settings: key 'basis': {s.basis!r} has no functions "
                                   f"for {symbol} (an unknown basis name, or one that does "
                                   "not cover this element)")

    # -- one SCF + gradient at one field ------------------------------------------------
    def _molecule(self, atoms: Atoms, charge: float | None = None):
        from pyscf import gto

        s = self.config
        if charge is None:
            charge = s.charge
        if abs(charge - round(charge)) > 1e-9:
            raise BackendError(f"PySCF needs an integer net charge; got {charge:g} e")
        electrons = int(atoms.numbers.sum()) - round(charge)
        if electrons % 2 != s.spin % 2:
            raise BackendError(f"{electrons} electrons (net charge {round(charge)} e) do not "
                               f"fit spin = 2S = {s.spin}: set spin to an "
                               f"{'odd' if electrons % 2 else 'even'} number")
        try:
            return gto.M(
                atom=[(sym, pos / units.BOHR) for sym, pos in
                      zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)],
                unit="Bohr",
                basis=s.basis,
                charge=round(charge),
                spin=s.spin,
                verbose=0,
            )
        except (RuntimeError, KeyError, ValueError) as exc:
            raise BackendError(f"PySCF could not build the molecule: {exc}") from None

    def _scf(self, mol, field_au: np.ndarray, dm0=None):
        """Converged mean-field object in a uniform field (atomic units)."""
        from pyscf import dft, scf

        s = self.config
        restricted = s.spin == 0
        if s.xc.upper() == "HF":
            mf = scf.RHF(mol) if restricted else scf.UHF(mol)
        else:
            mf = dft.RKS(mol) if restricted else dft.UKS(mol)
            mf.xc = s.xc
            mf.grids.level = s.grid_level
        if s.density_fit:
            mf = mf.density_fit()
        mf.conv_tol = s.conv_tol
        mf.conv_tol_grad = s.conv_tol_grad
        mf.max_cycle = s.max_cycle
        with mol.with_common_orig((0.0, 0.0, 0.0)):
            r_ints = mol.intor("int1e_r", comp=3)
        hcore = mf.get_hcore() + np.einsum("x,xij->ij", field_au, r_ints)
        e_nuc = mf.energy_nuc() - field_au @ np.einsum("a,ax->x", mol.atom_charges(),
                                                       mol.atom_coords())
        mf.get_hcore = lambda *_args, **_kw: hcore
        mf.energy_nuc = lambda *_args, **_kw: e_nuc
        mf.kernel(dm0=dm0)
        if not mf.converged:
            raise BackendError(
                f"SCF did not converge in {s.max_cycle} cycles at field "
                f"{np.round(field_au * units.AU_FIELD, 5).tolist()} V/Å"
            )
        return mf

    @staticmethod
    def _gradient(mol, mf, field_au: np.ndarray) -> np.ndarray:
        """Analytic nuclear gradient [N,3] in Hartree/bohr including the field terms."""
        grad = mf.nuc_grad_method()
        base_hcore = grad.get_hcore
        with mol.with_common_orig((0.0, 0.0, 0.0)):
            irp = mol.intor("int1e_irp", comp=9).reshape(3, 3, mol.nao, mol.nao)
        # irp[x, y] = <mu| r_x d/dy |nu>; PySCF's convention for get_hcore is
        # -<d mu/dy|h|nu>, so the field term is -sum_x E_x <d_y mu| r_x |nu>.
        field_term = -np.einsum("x,xyji->yij", field_au, irp)
        grad.get_hcore = lambda m=None: base_hcore(m) + field_term
        base_nuc = grad.grad_nuc
        nuclear_field = -np.outer(mol.atom_charges(), field_au)
        grad.grad_nuc = lambda *a, **k: base_nuc(*a, **k) + nuclear_field
        return grad.kernel()

    @staticmethod
    def _dipole_au(mol, mf) -> np.ndarray:
        dm = mf.make_rdm1()
        if dm.ndim == 3:  # unrestricted: alpha + beta
            dm = dm[0] + dm[1]
        with mol.with_common_orig((0.0, 0.0, 0.0)):
            r_ints = mol.intor("int1e_r", comp=3)
        nuclear = np.einsum("a,ax->x", mol.atom_charges(), mol.atom_coords())
        return nuclear - np.einsum("xij,ji->x", r_ints, dm).real

    @staticmethod
    def _charges(mol, mf) -> np.ndarray:
        """Meta-Löwdin atomic charges [N] e (PySCF's population analysis: Löwdin
        orthogonalisation after a pre-orthogonalisation on free-atom (ANO) orbitals,
        nearly independent of the basis, unlike Mulliken's)."""
        _, charges = mf.mulliken_meta(mol, mf.make_rdm1(), verbose=0)
        return np.asarray(charges, dtype=float)

    # -- the public contract --------------------------------------------------------
    def label(self, atoms: Atoms, efield, properties: Iterable[str],
              charge: float | None = None) -> dict:
        from pyscf import lib

        props = check_properties(properties)
        if atoms.pbc.any():
            raise BackendError("the PySCF backend labels molecules and clusters only "
                               "(pbc must be False); use the gpaw backend for periodic slabs")
        if self.config.threads:
            lib.num_threads(self.config.threads)
        efield = np.asarray(efield, dtype=float).reshape(3)
        e_au = efield / units.AU_FIELD
        mol = self._molecule(atoms, charge)
        mf = self._scf(mol, e_au)
        out: dict[str, np.ndarray] = {
            "efield": efield.copy(),
            "total_charge": np.array(float(mol.charge)),
        }
        if "charges" in props:
            out["charges"] = self._charges(mol, mf)
        if "energy" in props:
            out["energy"] = np.array(mf.e_tot * units.HARTREE)
        if "dipole" in props:
            out["dipole"] = self._dipole_au(mol, mf) * units.BOHR
        if "forces" in props:
            out["forces"] = -self._gradient(mol, mf, e_au) * units.AU_FORCE
        # The central differences use only the +-h calculations, not the ones at E.
        if props & {"polarizability", "born_charges"}:
            out.update(self._field_derivatives(mol, mf, e_au, props))
        return out

    def _field_derivatives(self, mol, mf0, e_au: np.ndarray, props: set[str]) -> dict:
        h = self.config.field_step  # V/Å
        dm0 = mf0.make_rdm1()
        dipoles = np.zeros((2, 3, 3))  # [sign, field direction b, dipole component a]
        forces = np.zeros((2, 3, mol.natm, 3))  # [sign, field direction a, atom, b]
        for b in range(3):
            for k, sign in enumerate((1.0, -1.0)):
                shifted = e_au.copy()
                shifted[b] += sign * h / units.AU_FIELD
                mf = self._scf(mol, shifted, dm0=dm0)
                dipoles[k, b] = self._dipole_au(mol, mf) * units.BOHR
                if "born_charges" in props:
                    forces[k, b] = -self._gradient(mol, mf, shifted) * units.AU_FORCE
        out = {}
        if "polarizability" in props:
            # alpha_ab = d mu_a / d E_b ; dipoles[k, b, a]
            out["polarizability"] = ((dipoles[0] - dipoles[1]) / (2 * h)).T.copy()
        if "born_charges" in props:
            # Z*_{i,ab} = d F_{i,b} / d E_a ; forces[k, a, i, b]
            out["born_charges"] = np.transpose((forces[0] - forces[1]) / (2 * h), (1, 0, 2))
        return out
