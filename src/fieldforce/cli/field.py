"""``fieldforce field validate``: the finite-element Laplace solve on a canonical emitter,
its apex field enhancement factor against the closed form or published value."""

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


def validate(args) -> int:
    from fieldforce.data.atomic import write_json
    from fieldforce.errors import ConfigError
    from fieldforce.fields.fem import Emitter, require
    from fieldforce.fields.fem.validate import validate_emitter

    require()
    if args.refine < 0 or args.refine > 5:
        raise ConfigError(f"--refine {args.refine}: expected 0..5 (each level ~4-8x the "
                          "elements of the one before)")
    from fieldforce.data.atomic import refuse_overwriting

    for option, path in (("--json", args.json), ("--vtu", args.vtu)):
        if path is not None and path.is_dir():
            raise ConfigError(f"{option} {path}: is a directory; give a file name")
    refuse_overwriting({"--json": args.json, "--vtu": args.vtu}, {})
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
