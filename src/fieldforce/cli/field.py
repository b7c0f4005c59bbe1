"""``fieldforce field validate``: the finite-element Laplace solve on a canonical emitter,
its apex field enhancement factor against the closed form or published value;
``fieldforce field solve``: the field, induced charges and forces of an atomistic metal."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "field", help="finite-element fields around metal emitters",
        description="Finite-element electrostatics (scikit-fem, gmsh; the fem extra): the "
                    "potential around a metal in an applied field, phi = 0 on the metal, "
                    "the applied field E0 far above it.")
    sub = p.add_subparsers(dest="field_command", metavar="ACTION", required=True)
    q = sub.add_parser(
        "validate", help="apex field enhancement of a canonical emitter vs its reference",
        description="Mesh the vacuum around a canonical emitter on a grounded plane, solve, "
                    "and compare the apex field enhancement factor beta = E_apex / E0 with "
                    "the exact value (hemisphere: 3), the closed form (hemi-ellipsoid) or "
                    "the published fit (hemisphere on a post, Forbes et al. 2003).")
    q.add_argument("--shape", required=True, metavar="SHAPE",
                   help="hemisphere, hemi-ellipsoid or hemisphere-on-post")
    q.add_argument("--radius", type=float, required=True,
                   help="the sphere's radius, the ellipsoid's base radius (semi-minor axis) "
                        "or the post's radius, Å")
    q.add_argument("--height", type=float, default=None,
                   help="total height of the emitter above the plane, Å (hemisphere: its "
                        "radius)")
    q.add_argument("--refine", type=int, default=0, metavar="K",
                   help="also solve on K finer meshes (sizes near the surface halved each "
                        "time) and print the convergence table")
    q.add_argument("--order", type=int, choices=(1, 2), default=2,
                   help="mesh order: 2 = curved 10-node tetrahedra (default), 1 = flat")
    q.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="write the result (beta, n_elements, seconds, convergence, ...)")
    q.add_argument("--vtu", type=Path, default=None, metavar="OUT.vtu",
                   help="write the finest mesh with phi and E at its vertices (ParaView)")
    q.set_defaults(func=validate)
    q = sub.add_parser(
        "solve", help="field, surface charges and forces of an atomistic metal",
        description="Solve Laplace's equation around an atomistic metal slab (a tip, an "
                    "adatom, a step; periodic in x and y with its first two cell vectors "
                    "along x and y) in an applied field E0 along +z, and write every "
                    "atom's field (V/Å), induced charge (e) and Maxwell force 1/2 q E "
                    "(eV/Å; for field-free potentials only) to an extxyz file, with the "
                    "apex field enhancement beta.")
    q.add_argument("structure", type=Path, help="the metal, extxyz or any ASE format")
    q.add_argument("--e0", type=float, required=True, help="applied field, V/Å (+z)")
    q.add_argument("--out", type=Path, required=True, metavar="OUT.xyz",
                   help="the structure with arrays field, surface_charge, maxwell_forces, "
                        "surface")
    q.add_argument("--gap", type=float, default=40.0,
                   help="vacuum above the highest atom to the top of the box, Å")
    q.add_argument("--metal-radius", type=float, default=None,
                   help="radius of the metal spheres, Å (default: Wigner-Seitz radius)")
    q.add_argument("--size", type=float, default=0.3,
                   help="element size at the metal's surface, Å")
    q.add_argument("--growth", type=float, default=0.3,
                   help="element size growth per Å of distance from the surface")
    # the default is the library's (fields.fem.APEX_GROWTH), not repeated here: importing
    # it would load torch with the CLI's parser
    q.add_argument("--apex-growth", type=float, default=None,
                   help="growth of the surface's element size per Å of distance from the "
                        "apex (default 0.02; 0: the same size everywhere)")
    q.add_argument("--size-far", type=float, default=None,
                   help="largest surface element size far from the apex, Å (default: 4x "
                        "--size)")
    q.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="a picture of the field magnitude on the surface atoms")
    q.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="write beta, charges' sum, mesh size and timings")
    q.set_defaults(func=solve)


def _check_outputs(outputs: dict, inputs: dict) -> None:
    """One ConfigError for an output path that is a directory, an input or another output."""
    from fieldforce.data.atomic import refuse_overwriting
    from fieldforce.errors import ConfigError

    for option, path in outputs.items():
        if path is not None and path.is_dir():
            raise ConfigError(f"{option} {path}: is a directory; give a file name")
    refuse_overwriting(outputs, inputs)


def validate(args) -> int:
    from fieldforce.data.atomic import write_json
    from fieldforce.errors import ConfigError
    from fieldforce.fields.fem import Emitter, require
    from fieldforce.fields.fem.validate import validate_emitter

    require()
    if args.refine < 0 or args.refine > 5:
        raise ConfigError(f"--refine {args.refine}: expected 0..5 (each level ~4-8x the "
                          "elements of the one before)")
    _check_outputs({"--json": args.json, "--vtu": args.vtu}, {})
    emitter = Emitter.make(args.shape, args.radius, args.height)
    print(f"{'level':>5s} {'size_apex Å':>11s} {'elements':>9s} {'dofs':>8s} {'beta':>9s} "
          f"{'error':>9s} {'Q/eps0E0A':>9s} {'s':>6s}")

    def show(row):
        error = "" if row["relative_error"] is None else f"{100 * row['relative_error']:+8.3f}%"
        print(f"{row['level']:5d} {row['size_apex_A']:11.4g} {row['n_elements']:9d} "
              f"{row['n_dofs']:8d} {row['beta']:9.4f} {error:>9s} "
              f"{row['charge_ratio']:9.5f} {row['seconds']:6.1f}", flush=True)

    result = validate_emitter(emitter, refine=args.refine, order=args.order, progress=show,
                              keep=args.vtu is not None)
    solution = result.pop("solution", None)
    print(f"{emitter.shape}, radius {emitter.radius:g} Å, height {emitter.height:g} Å: "
          f"beta = {result['beta']:.4f}; reference {result['beta_reference']:.4f} "
          f"({result['reference']}); {result['n_elements']} elements, "
          f"{result['seconds']:.1f} s")
    if args.json is not None:
        write_json(result, args.json)
        print(f"field validate: wrote {args.json}")
    if solution is not None:
        solution.write_vtu(args.vtu)
        print(f"field validate: wrote {args.vtu}")
    return 0


def solve(args) -> int:

    from fieldforce.data.atomic import atomic_path, write_json
    from fieldforce.errors import DataError
    from fieldforce.fields.fem import require
    from fieldforce.fields.fem.atomistic import solve_atoms
    from fieldforce.units import EPSILON0

    require()
    import ase.io

    if not args.structure.exists():
        raise DataError(f"{args.structure}: file not found")
    _check_outputs({"--out": args.out, "--plot": args.plot, "--json": args.json},
                   {"STRUCTURE": args.structure})
    try:
        atoms = ase.io.read(args.structure)
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds on a bad file
        raise DataError(f"{args.structure}: not a readable structure "
                        f"({type(exc).__name__}: {exc})") from None
    try:
        result = solve_atoms(atoms, args.e0, gap=args.gap, metal_radius=args.metal_radius,
                             size_surface=args.size, growth=args.growth,
                             size_far=args.size_far,
                             **({} if args.apex_growth is None
                                else {"apex_growth": args.apex_growth}))
    except DataError as exc:
        raise DataError(f"{args.structure}: {exc}") from None
    vacuum = result.solution.vacuum
    expected = EPSILON0 * args.e0 * vacuum.top_area
    out = atoms.copy()
    out.calc = None
    out.new_array("field", result.fields)
    out.new_array("surface_charge", result.charges)
    out.new_array("maxwell_forces", result.maxwell_forces)
    out.new_array("surface", result.surface.astype(int))
    out.info.update(e0=args.e0, beta=result.beta, n_elements=vacuum.n_elements)
    with atomic_path(args.out, ".xyz") as tmp:
        ase.io.write(tmp, out, format="extxyz")
    summary = {"beta": result.beta, "e0_V_per_A": args.e0,
               "apex_field_V_per_A": result.beta * args.e0,
               "induced_charge_e": float(result.charges.sum()),
               "induced_charge_expected_e": expected, "surface_atoms": int(result.surface.sum()),
               "n_elements": vacuum.n_elements, "n_dofs": result.solution.n_dofs,
               "cg_iterations": result.solution.iterations, "seconds": result.seconds,
               "settings": vacuum.settings}
    print(f"{args.structure}: {len(atoms)} atoms ({summary['surface_atoms']} at the surface), "
          f"{vacuum.n_elements} elements; beta = {result.beta:.3f} (apex field "
          f"{result.beta * args.e0:.3f} V/Å); induced charge {summary['induced_charge_e']:.4f} "
          f"e (eps0 E0 A = {expected:.4f}); {result.seconds['total']:.1f} s")
    print(f"field solve: wrote {args.out}")
    if args.json is not None:
        write_json(summary, args.json)
        print(f"field solve: wrote {args.json}")
    if args.plot is not None:
        _plot_surface_field(result, args.plot, args.structure.name)
        print(f"field solve: wrote {args.plot}")
    return 0


def _plot_surface_field(result, path: Path, title: str) -> None:
    """Side and top views of the surface atoms coloured by |E|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from fieldforce.data.atomic import save_figure

    positions = result.atoms.positions
    surface = result.surface
    magnitude = np.linalg.norm(result.fields, axis=1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
    order = np.argsort(positions[surface, 1])
    for ax, (a, b), label in ((axes[0], (0, 2), "side (x-z)"), (axes[1], (0, 1), "top (x-y)")):
        ax.scatter(positions[~surface, a], positions[~surface, b], s=8, c="0.8")
        points = ax.scatter(positions[surface, a][order], positions[surface, b][order], s=28,
                            c=magnitude[surface][order], cmap="inferno", edgecolors="none")
        ax.set_aspect("equal")
        ax.set_xlabel(f"{'xyz'[a]} (Å)")
        ax.set_ylabel(f"{'xyz'[b]} (Å)")
        ax.set_title(label)
    fig.colorbar(points, ax=axes, label="|E| at the surface (V/Å)")
    fig.suptitle(f"{title}: E0 = {result.e0:g} V/Å, beta = {result.beta:.2f}")
    save_figure(fig, path, dpi=130)
    plt.close(fig)
