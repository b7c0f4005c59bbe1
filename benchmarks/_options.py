"""Helpers shared by the benchmark scripts (not a benchmark itself): command-line
``KEY=VALUE`` options, the latent-model variants, the shared datasets and resumable
``fieldforce md`` runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def option_arguments(parser, model_help: str, training_help: str) -> None:
    """``--set KEY=VALUE ...`` model options and ``--train-set KEY=VALUE ...`` training
    options (values parsed as YAML by :func:`key_values`), with each script's help."""
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help=f"{model_help} (values parsed as YAML)")
    parser.add_argument("--train-set", nargs="+", default=[], metavar="KEY=VALUE",
                        help=f"{training_help} (values parsed as YAML)")


def common_arguments(parser, *, epochs: int, work: str, out: str, variants=None,
                     data_dir: bool = True) -> None:
    """The options every training benchmark has: data directory (unless ``data_dir`` is
    false: shipped data), epochs, seed, threads, variants, ``--set KEY=VALUE`` model
    options, ``--train-set KEY=VALUE`` training options, work directory and result file."""
    variants = variants or LATENT_VARIANTS
    if data_dir:
        parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(variants), choices=list(variants))
    option_arguments(parser, "model options for every variant, e.g. charge_unit=1.0",
                     "training options replacing the script's own, e.g. the package "
                     "defaults: max_epochs=100000 patience=null \"loss_weights={energy: "
                     "1, forces: 100}\"")
    parser.add_argument("--work", type=Path, default=Path(work))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / out)


def run_md(folder: Path, config: str, threads: int = 1,
           seconds: float | None = None) -> bool:
    """Run ``fieldforce md`` on the YAML text ``config`` (written to ``folder/md.yaml``;
    its output should be ``folder/md``), resuming it if ``folder/md`` holds a
    trajectory; after ``seconds`` it is sent SIGTERM (md checkpoints and exits) and False
    is returned: call again to continue. Output in ``folder/run.log``; a failed run is a
    SystemExit naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "md.yaml").write_text(config)
    command = [str(Path(sys.executable).with_name("fieldforce")), "md",
               str(folder / "md.yaml"), "--no-progress"]
    if (folder / "md" / "trajectory.xyz").exists():
        command.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(folder / "run.log", "a") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            process.wait()
            return False
    if process.returncode != 0:
        raise SystemExit(f"fieldforce md failed for {folder} (see {folder / 'run.log'})")
    return True
