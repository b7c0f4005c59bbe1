"""Energy + forces of neutral ionic systems: how the Coulomb methods scale.

    python benchmarks/electrostatics_scaling.py --quick             # 1e3..1e4 atoms
    python benchmarks/electrostatics_scaling.py                     # 1e3..1e5 atoms
    python benchmarks/electrostatics_scaling.py --les-src PATH      # + the LES peer

Systems: rock-salt NaCl supercells (a = 5.64 Å) with every ion displaced at
random by up to 0.1 Å, charges +-1. Each (method, size) runs in its own
process so that its peak memory (max RSS) is its own. Reported per run: wall
time of one energy + forces evaluation (best of ``--repeat``, after a warm-up),
the relative RMS force error against Ewald at accuracy 1e-9 (sizes up to
``--check-max``), and max RSS.

Peers measured in the same run:
* torch-pme called directly with the same parameters and a precomputed
  neighbour list: the overhead of fieldforce's layer (neighbour list included);
* pymatgen's EwaldSummation (sizes up to ``--pymatgen-max``);
* the reciprocal-space sum of the Latent Ewald Summation reference code
  (``les.module.ewald.Ewald``), when ``--les-src`` points at its ``src``
  folder; its Gaussian charges (sigma = 1 Å) get the k-space cutoff that gives
  the same accuracy, exp(-sigma² k² / 2) = accuracy.
Writes benchmarks/results/electrostatics_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fieldforce.units import COULOMB_CONSTANT as COULOMB  # eV Å / e²

# fieldforce's ``accuracy`` bounds the RMS force error relative to the Coulomb force scale
# ke <q²> rho^(2/3) (parameters.py). In these slightly displaced lattices the forces nearly
# cancel: their RMS is ~12x below that scale, so 1e-5 relative to the actual forces needs
# accuracy ~ 1e-5 / 12; 5e-7 leaves a margin.
ACCURACY = 5e-7


def nacl(reps: int, seed: int = 0):
    from ase.build import bulk

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(reps)
    rng = np.random.default_rng(seed)
    atoms.positions += rng.uniform(-0.1, 0.1, atoms.positions.shape)
    charges = np.where(atoms.numbers == 11, 1.0, -1.0)
    return atoms, charges


def _forces_fieldforce(atoms, q, method, accuracy):
    import torch

    from fieldforce.electrostatics import coulomb_potential

    pos = torch.tensor(atoms.positions, requires_grad=True)
    qt = torch.tensor(q)
    phi = coulomb_potential(pos, qt, torch.tensor(atoms.cell.array), True, method, accuracy)
    energy = 0.5 * (qt * phi).sum()
    return float(energy.detach()), -torch.autograd.grad(energy, pos)[0].numpy()


def _torchpme_direct(atoms, q, accuracy):
    """PME through torch-pme alone, neighbour list computed beforehand (not timed)."""
    import torch

    from fieldforce.electrostatics import splitting_parameters
    from fieldforce.electrostatics.coulomb import _calculator
    from fieldforce.neighbors import neighbor_pairs

    params = splitting_parameters("pme", accuracy, len(atoms), atoms.cell.array)
    i, j, s = neighbor_pairs(atoms.positions, atoms.cell.array, True, params.cutoff)
    cell = torch.tensor(atoms.cell.array)
    shifts = torch.tensor(s, dtype=torch.float64)
    ij = torch.stack([torch.tensor(i), torch.tensor(j)], dim=1)
    calc = _calculator(params, torch.float64, "cpu")
    qt = torch.tensor(q)[:, None]

    def run():
        pos = torch.tensor(atoms.positions, requires_grad=True)
        d = (pos[ij[:, 1]] - pos[ij[:, 0]] + shifts @ cell).norm(dim=-1)
        energy = (qt * calc(qt, cell, pos, ij, d)).sum()
        return float(energy.detach()), -torch.autograd.grad(energy, pos)[0].numpy()

    return run


def _les_peer(atoms, q, accuracy, les_src):
    import torch

    sys.path.insert(0, les_src)
    from les.module.ewald import Ewald

    sigma = 1.0
    k_max = np.sqrt(2 * np.log(1 / accuracy)) / sigma
    ewald = Ewald(dl=2 * np.pi / k_max, sigma=sigma)
    cell = torch.tensor(atoms.cell.array)[None]
    qt = torch.tensor(q)[:, None]

    def run():
        pos = torch.tensor(atoms.positions, requires_grad=True)
        energy = ewald(qt, pos, cell)[0].sum()
        return float(energy.detach()), -torch.autograd.grad(energy, pos)[0].numpy()

    return run


def _pymatgen_peer(atoms, q):
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.core import Lattice, Structure

    def run():
        structure = Structure(Lattice(atoms.cell.array), ["H"] * len(atoms), atoms.positions,
                              coords_are_cartesian=True, site_properties={"charge": q.tolist()})
        peer = EwaldSummation(structure, compute_forces=True)
        return peer.total_energy, peer.forces

    return run


def worker(method: str, reps: int, repeat: int, check: bool, les_src: str | None,
           accuracy: float, memory_gb: float) -> dict:
    # a peer that does not fit fails with MemoryError instead of waking the OOM killer
    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    atoms, q = nacl(reps)
    if method in ("ewald", "pme", "p3m"):
        def run():
            return _forces_fieldforce(atoms, q, method, accuracy)
    elif method == "torchpme-pme":
        run = _torchpme_direct(atoms, q, accuracy)
    elif method == "les-kspace":
        run = _les_peer(atoms, q, accuracy, les_src)
    elif method == "pymatgen":
        run = _pymatgen_peer(atoms, q)
    else:
        raise SystemExit(f"unknown method {method}")
    run()  # warm-up (imports, allocations)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _, forces = run()
        times.append(time.perf_counter() - t0)
    out = {"method": method, "atoms": len(atoms), "seconds": min(times),
           "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if check and method not in ("les-kspace",):  # LES sums Gaussian, not point, charges
        _, reference = _forces_fieldforce(atoms, q, "ewald", 1e-9)
        rms_error = np.sqrt(((forces - reference) ** 2).mean())
        out["force_error"] = float(rms_error / np.sqrt((reference**2).mean()))
        # against the scale the accuracy refers to: ke <q²> rho^(2/3)
        scale = COULOMB * np.mean(q**2) * (len(atoms) / atoms.get_volume()) ** (2 / 3)
        out["force_error_scale"] = float(rms_error / scale)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1e3..1e4 only")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="supercell repetitions (8 r^3 atoms), e.g. 5 7 11 15 23")
    parser.add_argument("--les-src", default=None, help="path of the LES code's src folder")
    parser.add_argument("--check-max", type=int, default=3000,
                        help="largest size whose force error is measured")
    parser.add_argument("--accuracy", type=float, default=ACCURACY)
    parser.add_argument("--methods", nargs="+", default=None,
                        help="a subset of: ewald pme p3m torchpme-pme pymatgen les-kspace")
    parser.add_argument("--memory-gb", type=float, default=20.0,
                        help="address-space limit of each worker (a run past it fails)")
    parser.add_argument("--pymatgen-max", type=int, default=1000)
    parser.add_argument("--ewald-max", type=int, default=3000)
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "REPS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "electrostatics_scaling.json")
    args = parser.parse_args()
    if args.worker:
        method, reps = args.worker[0], int(args.worker[1])
        check = 8 * reps**3 <= args.check_max
        print(json.dumps(worker(method, reps, args.repeat, check, args.les_src,
                                args.accuracy, args.memory_gb)))
        return

    reps_list = [5, 7, 11] if args.quick else [5, 7, 11, 15, 23]  # 1000 .. 97336 atoms
    if args.sizes:
        reps_list = args.sizes
    methods = ["ewald", "pme", "p3m", "torchpme-pme", "pymatgen"]
    if args.les_src:
        methods.append("les-kspace")
    if args.methods:
        methods = [m for m in methods if m in args.methods]
    rows = []
    print(f"{'method':14s}{'atoms':>8s}{'seconds':>10s}{'force err':>11s}{'max RSS MB':>12s}")
    for reps in reps_list:
        n = 8 * reps**3
        for method in methods:
            if (method == "pymatgen" and n > args.pymatgen_max) or (
                method == "ewald" and n > args.ewald_max
            ):
                continue
            cmd = [sys.executable, __file__, "--worker", method, str(reps),
                   "--repeat", str(args.repeat), "--check-max", str(args.check_max),
                   "--accuracy", str(args.accuracy), "--memory-gb", str(args.memory_gb)]
            if args.les_src:
                cmd += ["--les-src", args.les_src]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                lines = (proc.stderr.strip() or f"exit code {proc.returncode}").splitlines()
                reason = lines[-1][:90]
                rows.append({"method": method, "atoms": n, "failed": reason})
                print(f"{method:14s}{n:8d}  failed: {reason}")
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            # keep what is measured even if a later size is interrupted
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"accuracy": args.accuracy, "rows": rows,
                                            "partial": True}, indent=1) + "\n")
            err = f"{row['force_error']:.1e}" if "force_error" in row else "-"
            print(f"{method:14s}{n:8d}{row['seconds']:10.3f}{err:>11s}"
                  f"{row['max_rss_mb']:12.0f}", flush=True)

    summary = {}
    for method in methods:
        pts = [(r["atoms"], r["seconds"]) for r in rows
               if r["method"] == method and "seconds" in r]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            summary[method] = {"scaling_exponent": float(np.polyfit(x, y, 1)[0])}
    by = {(r["method"], r["atoms"]): r["seconds"] for r in rows if "seconds" in r}
    ratios = {}
    for (method, n), seconds in by.items():
        if method == "pme":
            for peer in ("torchpme-pme", "les-kspace", "pymatgen", "ewald"):
                if (peer, n) in by:
                    ratios[f"{peer}/pme@{n}"] = by[(peer, n)] / seconds
    print("\nscaling exponents (time ~ N^p):",
          {k: round(v["scaling_exponent"], 2) for k, v in summary.items()})
    print("time ratios (peer / fieldforce PME, same run):",
          {k: round(v, 2) for k, v in sorted(ratios.items())})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"accuracy": args.accuracy, "rows": rows, "exponents": summary,
                                    "ratios": ratios}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
