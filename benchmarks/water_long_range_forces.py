"""How large is the long-range Coulomb force in liquid water? (context for the LES benchmark)

    python benchmarks/water_long_range_forces.py

On the first 10 frames of ../shared/data/lesfit_liquid_water_RPBE-D3.xyz with TIP3P
point charges (q_O = -0.834, q_H = +0.417 e): the Ewald Coulomb force on every atom
(fieldforce.electrostatics, accuracy 1e-6) and the part of it exerted by whole
molecules whose oxygen is farther than r_c from the atom (r_c = 4 Å, the latent
model's descriptor cutoff, and 6 Å). A short-range model cannot see that part
directly, only through its correlation with the local structure. Writes
benchmarks/results/water_long_range_forces.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TIP3P = {8: -0.834, 1: 0.417}


def forces_beyond(atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """(all Coulomb forces [N, 3], those from molecules beyond ``cutoff``) in eV/Å."""
    import torch

    from fieldforce.electrostatics.coulomb import coulomb_potential
    from fieldforce.units import COULOMB_CONSTANT

    q = np.array([TIP3P[int(z)] for z in atoms.numbers])
    pos = torch.tensor(atoms.positions, requires_grad=True)
    phi = coulomb_potential(pos, torch.tensor(q), torch.tensor(atoms.cell.array), True,
                            method="ewald", accuracy=1e-6)
    energy = 0.5 * (torch.tensor(q) * phi).sum()
    f_all = -torch.autograd.grad(energy, pos)[0].numpy()
    cell = atoms.cell.array
    d = atoms.positions[None] - atoms.positions[:, None]  # r_j - r_i, minimum image
    frac = d @ np.linalg.inv(cell)
    d = (frac - np.round(frac)) @ cell
    r = np.linalg.norm(d, axis=-1)
    oxygens = np.flatnonzero(atoms.numbers == 8)
    owner = np.arange(len(atoms))  # the oxygen of each atom's molecule
    for h in np.flatnonzero(atoms.numbers == 1):
        owner[h] = oxygens[np.argmin(r[h, oxygens])]
    near = r[:, owner] < cutoff
    np.fill_diagonal(near, False)
    np.fill_diagonal(r, np.inf)
    pair = COULOMB_CONSTANT * (q[:, None] * q[None, :])[..., None] * (-d) / r[..., None] ** 3
    return f_all, f_all - (pair * near[..., None]).sum(axis=1)


def main() -> None:
    import ase.io
    import torch

    torch.set_num_threads(1)
    frames = ase.io.read(ROOT.parent / "shared" / "data" / "lesfit_liquid_water_RPBE-D3.xyz",
                         ":10")
    rows = []
    for cutoff in (4.0, 6.0):
        pairs = [forces_beyond(a, cutoff) for a in frames]
        total = np.concatenate([p[0] for p in pairs])
        beyond = np.concatenate([p[1] for p in pairs])
        rows.append({"cutoff_A": cutoff, "rms_coulomb_force": float(np.sqrt(np.mean(total ** 2))),
                     "rms_force_from_molecules_beyond_cutoff":
                         float(np.sqrt(np.mean(beyond ** 2)))})
        print(f"r_c {cutoff} Å: RMS Coulomb force {rows[-1]['rms_coulomb_force']:.3f} eV/Å, "
              f"from molecules beyond r_c {rows[-1]['rms_force_from_molecules_beyond_cutoff']:.3f}"
              " eV/Å")
    out = ROOT / "benchmarks" / "results" / "water_long_range_forces.json"
    out.write_text(json.dumps({"command": "python benchmarks/water_long_range_forces.py",
                               "frames": len(frames), "charges": "TIP3P", "rows": rows},
                              indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
