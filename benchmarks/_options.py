"""Helpers shared by the benchmark scripts (not a benchmark itself): command-line
``KEY=VALUE`` options, the latent-model variants and the shared datasets."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: the latent-charge model and the same backbone without its long-range part
LATENT_VARIANTS = {"latent": {"family": "latent"},
                   "short_range": {"family": "latent", "long_range": False}}


def key_values(pairs: list[str]) -> dict:
    """``["charge_unit=1.0", "hidden=[32, 32]"]`` -> ``{"charge_unit": 1.0, ...}``.

    Values are parsed as YAML, so numbers, booleans and lists keep their types.
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def shared_frames(spec_name: str, data_dir: Path) -> list:
    """The frames of a ``../shared/data`` file through ``examples/specs/<spec_name>.yaml``,
    read from ``data_dir`` (the spec's own path is relative to the repository)."""
    from fieldforce.data.io import read_frames
    from fieldforce.data.spec import load_spec

    spec = yaml.safe_load((ROOT / "examples" / "specs" / f"{spec_name}.yaml").read_text())
    spec["path"] = str(data_dir / Path(spec["path"]).name)
    return read_frames(load_spec(spec))


def common_arguments(parser, *, epochs: int, work: str, out: str, variants=None,
                     data_dir: bool = True) -> None:
    """The options every training benchmark has: data directory (unless ``data_dir`` is
    false: shipped data), epochs, seed, threads, variants, ``--set KEY=VALUE`` model
    options, work directory and result file."""
    variants = variants or LATENT_VARIANTS
    if data_dir:
        parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(variants), choices=list(variants))
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="model options for every variant, e.g. charge_unit=1.0 "
                             "(values parsed as YAML)")
    parser.add_argument("--work", type=Path, default=Path(work))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / out)
