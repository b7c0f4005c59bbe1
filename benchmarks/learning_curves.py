"""Learning curves (issue 13): test errors against the number of training frames, for
fieldforce and its peers on the same nested training subsets, as a table and a plot.

    python benchmarks/backbone_variants.py --variants new --train-size 25   # and 100, ...
    python benchmarks/peer_mace.py --python /tmp/peers/bin/python --train-size 25
    python benchmarks/learning_curves.py [--dataset water] [--variants KEY ... --labels NAME ...]

Reads the rows of ``backbone_variants[_DATASET].json`` (``name@nN`` and the full-set
``name``), ``peer_mace[_DATASET].json`` (``size@nN`` and ``size``) and
``peer_cace[_DATASET].json`` (``cutoffR@nN`` and ``cutoffR``) and writes
``benchmarks/results/learning_curves[_DATASET].png`` (force and energy RMSE against N,
log-log) and ``.json``. Nothing is trained here.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: rows of backbone_variants.json that are another variant's settings under an older name
ALIASES = {"force100_cosine_mp1": "new"}


def curves(dataset: str, variants: list[str],
           names: dict[str, str] | None = None) -> dict[str, list[dict]]:
    """Rows per model; ``names``: a display name per fieldforce variant key."""
    suffix = "" if dataset == "water" else f"_{dataset}"
    out: dict[str, list[dict]] = {}
    sources = [(f"backbone_variants{suffix}.json", "fieldforce {}", variants),
               (f"peer_mace{suffix}.json", "MACE {}", None),
               (f"peer_cace{suffix}.json", "CACE {}", None)]
    for name, label, wanted in sources:
        path = RESULTS / name
        if not path.exists():
            continue
        for key, row in json.loads(path.read_text()).items():
            match = re.fullmatch(r"([^@]+)(?:@n(\d+))?", key)
            if not match:  # other seeds are not part of the curve
                continue
            base, size = match.group(1), match.group(2)
            if wanted is not None:
                base = ALIASES.get(base, base)
            if wanted is not None and base not in wanted:
                continue
            n = int(size) if size else row.get("n_train")
            if n is None:
                continue
            shown = (names or {}).get(base, base) if wanted is not None else base
            out.setdefault(label.format(shown), []).append(
                {"n_train": n, "forces_eV_per_A": row["forces_eV_per_A"],
                 "energy_meV_per_atom": row["energy_meV_per_atom"]})
    # one point per size (an alias and its new name at the same size: the later row)
    return {k: sorted({r["n_train"]: r for r in v}.values(), key=lambda r: r["n_train"])
            for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="water")
    parser.add_argument("--variants", nargs="+", default=["new", "products"],
                        help="fieldforce rows (backbone_variants keys without @nN) to draw")
    parser.add_argument("--labels", nargs="+", default=None,
                        help="a short name for each of --variants, in the table and legend")
    args = parser.parse_args()
    if args.labels is not None and len(args.labels) != len(args.variants):
        parser.error(f"--labels needs one name per variant ({len(args.variants)}), "
                     f"got {len(args.labels)}")
    data = curves(args.dataset, args.variants,
                  dict(zip(args.variants, args.labels or args.variants, strict=True)))
    print("| model | N train | forces eV/Å | energy meV/atom |")
    print("|---|---|---|---|")
    for label, rows in data.items():
        for r in rows:
            print(f"| {label} | {r['n_train']} | {r['forces_eV_per_A']:.4f} | "
                  f"{r['energy_meV_per_atom']:.3f} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for label, rows in data.items():
        n = [r["n_train"] for r in rows]
        style = "o-" if label.startswith("fieldforce") else "s--"
        axes[0].plot(n, [r["forces_eV_per_A"] for r in rows], style, label=label)
        axes[1].plot(n, [r["energy_meV_per_atom"] for r in rows], style, label=label)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    sizes = sorted({r["n_train"] for rows in data.values() for r in rows})
    for ax, what in zip(axes, ("force RMSE (eV/Å)", "energy RMSE (meV/atom)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes)  # label the measured sizes only (log minor labels overlap)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training frames")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"learning curves: {args.dataset} (same test set for every point)")
    fig.tight_layout()
    suffix = "" if args.dataset == "water" else f"_{args.dataset}"
    png = RESULTS / f"learning_curves{suffix}.png"
    from fieldforce.data.atomic import save_figure

    save_figure(fig, png, dpi=120)
    (RESULTS / f"learning_curves{suffix}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
