"""Convergence of the metal dataset's DFT settings: what each choice changes in the numbers
that matter for field-dependent diffusion of a Cu adatom on Cu(100).

For the adatom at the hollow (minimum) and the bridge (saddle) of the EMT hop path, at
zero applied field, every variant gives (GPAW backend, polarizability by central
differences): the barrier at fixed geometry dE = E(bridge) - E(hollow) (eV), the dipole
difference dmu (e·Å) and the polarizability difference dalpha (e·Å²/V) along the normal,
the Gauss ratio and the wall time. Variants change one setting of the dataset's
(``fieldforce.datasets.make_metal.SETTINGS``): grid spacing, k-points, vacuum, slab
thickness, lateral cell, and fd instead of LCAO.

    python benchmarks/metal_convergence.py [--variants base h0.16 ...] [--max-hours H]

Resumable: each finished variant is stored in benchmarks/results/metal_convergence.json
and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fieldforce.datasets import make_metal as mm
from fieldforce.datasets import metal_slabs as slabs
from fieldforce.reference.backend import get_backend

RESULTS = Path(__file__).parent / "results" / "metal_convergence.json"

#: name -> (settings changes, geometry changes)
VARIANTS = {
    "base": ({}, {}),
    "h0.16": ({"h": 0.16}, {}),
    "k6": ({"kpts": (6, 6)}, {}),
    "k8": ({"kpts": (8, 8)}, {}),
    "vacuum9": ({}, {"vacuum": 9.0}),
    "layers4": ({}, {"layers": 4}),
    "cell3x3": ({"kpts": (3, 3)}, {"size": (3, 3)}),
    "fd": ({"mode": "fd"}, {}),
}


def geometries(size=(2, 2), layers=slabs.LAYERS, vacuum=slabs.VACUUM):
    """Hollow and bridge adatom slabs: the EMT path's end and middle images, rebuilt on a
    slab of the requested size, thickness and vacuum (adatom at the same height above
    the top layer; the top layers' EMT relaxation is dropped)."""
    path = slabs.hop_path("Cu(100)")
    out = {}
    for name, image in (("hollow", path[0]), ("bridge", path[len(path) // 2])):
        top = image.positions[:-1, 2].max()
        height = image.positions[-1, 2] - top
        ref = slabs.clean_slab("Cu(100)")
        a = ref.cell.array[:2] / 2  # primitive surface vectors
        frac = np.linalg.lstsq(a[:, :2].T, image.positions[-1, :2] - ref.positions[0, :2],
                               rcond=None)[0]
        slab = slabs.clean_slab("Cu(100)", size=size, layers=layers, vacuum=vacuum)
        out[name] = slabs.with_adatom(slab, "Cu(100)", tuple(frac), height, vacuum)
    return out


def run_variant(name: str) -> dict:
    settings, geometry = VARIANTS[name]
    backend = get_backend("gpaw", **{**mm.SETTINGS, **settings})
    start = time.perf_counter()
    labels = {}
    for site, atoms in geometries(**geometry).items():
        labels[site] = backend.label(atoms, np.zeros(3),
                                     ["energy", "dipole", "polarizability"])
    seconds = time.perf_counter() - start
    h, b = labels["hollow"], labels["bridge"]
    sites = {site: {"energy": float(x["energy"]), "mu": float(x["dipole"][2]),
                    "alpha": float(x["polarizability"][2, 2]), "field": float(x["efield"][2])}
             for site, x in labels.items()}
    return {
        "sites": sites,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "geometry": {k: list(v) if isinstance(v, tuple) else v for k, v in geometry.items()},
        "barrier_eV": float(b["energy"] - h["energy"]),
        "dmu_eA": float(b["dipole"][2] - h["dipole"][2]),
        "dalpha_eA2_per_V": float(b["polarizability"][2, 2] - h["polarizability"][2, 2]),
        "field_felt_V_per_A": [float(h["efield"][2]), float(b["efield"][2])],
        "gauss_ratio": [h["info"]["gauss_ratio"], b["info"]["gauss_ratio"]],
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--max-hours", type=float, default=None)
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    start = time.perf_counter()
    for name in args.variants:
        if name in results:
            continue
        if args.max_hours is not None and time.perf_counter() - start > 3600 * args.max_hours:
            break
        results[name] = run_variant(name)
        RESULTS.parent.mkdir(exist_ok=True)
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        tmp.replace(RESULTS)
    print(f"{'variant':10s} {'dE (eV)':>9s} {'at one F':>9s} {'dmu (eÅ)':>9s} {'dmu(F=0)':>9s} "
          f"{'dalpha':>9s} {'gauss':>12s} {'time (s)':>9s}")
    for name, r in results.items():
        r["barrier_common_field_eV"] = common_field_barrier(name, r)
        if "sites" in r:
            r["dmu_zero_field_eA"] = zero_field_differences(r)[0]
        dmu0 = r.get("dmu_zero_field_eA", float("nan"))
        print(f"{name:10s} {r['barrier_eV']:9.4f} {r['barrier_common_field_eV']:9.4f} "
              f"{r['dmu_eA']:9.4f} {dmu0:9.4f} {r['dalpha_eA2_per_V']:9.4f} "
              f"{min(r['gauss_ratio']):5.3f}-{max(r['gauss_ratio']):5.3f} {r['seconds']:9.0f}")
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(RESULTS)


def zero_field_differences(r: dict) -> tuple[float, float]:
    """(dmu, dalpha) of the bridge minus the hollow at F = 0: each site's dipole taken back
    from the field it felt, mu(0) = mu(F) - alpha F (the raw difference carries
    alpha dF, with dF the sites' different felt fields: half of dmu in a 2x2 cell)."""
    s = r["sites"]
    mu0 = {k: v["mu"] - v["alpha"] * v["field"] for k, v in s.items()}
    return mu0["bridge"] - mu0["hollow"], s["bridge"]["alpha"] - s["hollow"]["alpha"]


def common_field_barrier(name: str, r: dict) -> float:
    """The barrier with the bridge moved to the hollow's field: at zero applied strength
    each site felt F = mu / (eps0 A L) of its own dipole, so mu = F eps0 A L and
    E_b(F_h) = E_b - mu_b (F_h - F_b) (the alpha term is below 1e-4 eV)."""
    from fieldforce.units import EPSILON0

    slab = geometries(**VARIANTS[name][1])["bridge"]
    capacity = EPSILON0 * abs(np.linalg.det(slab.cell.array[:2, :2])) * slab.cell[2, 2]
    f_h, f_b = r["field_felt_V_per_A"]
    return float(r["barrier_eV"] - f_b * capacity * (f_h - f_b))


if __name__ == "__main__":
    main()
