"""The reliability issue's probes, run against one or two installations (before -> after).

    python benchmarks/reliability_probes.py --before /old/venv/bin --after .venv/bin

Each probe plays a user with bad or borderline input in a scratch directory, through the
``fieldforce`` command of the given installation, and reduces what happened to one short
line (exit code, the first words of the message, what was left on disk). The table is
printed and written to ``benchmarks/results/reliability_probes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TRAIN = """data: {{train: {data}, valid_fraction: 0.25}}
model: {{family: response, descriptor: {{cutoff: 3.0, max_radial: 2, max_angular: 2}},
        hidden: [8]}}
training: {{max_epochs: 1, batch_size: 8}}
output: {out}
"""


class Probe:
    """Runs fieldforce commands of one installation in a scratch directory."""

    def __init__(self, bin_dir: Path, work: Path):
        self.bin, self.work = bin_dir, work
        self.python = str(bin_dir / "python")

    def ff(self, *args, timeout=600) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "fieldforce"), *map(str, args)], cwd=self.work,
                              env=ENV, capture_output=True, text=True, timeout=timeout)

    def py(self, code: str) -> str:
        return subprocess.run([self.python, "-c", code], cwd=self.work, env=ENV,
                              capture_output=True, text=True, timeout=600).stdout.strip()


def said(result: subprocess.CompletedProcess, words: int = 14) -> str:
    """Exit code and the gist of stderr (traceback flagged)."""
    err = result.stderr.strip()
    lines = [line for line in err.splitlines() if line.strip()
             and "warnings.warn" not in line and "self.calculate" not in line]
    tb = "Traceback" in err
    text = (lines[-1] if tb and lines else lines[0] if lines else "")
    text = " ".join(text.split()[:words])
    return f"exit {result.returncode}" + (", traceback" if tb else "") + (
        f": {text}" if text else "")


def setup(p: Probe) -> None:
    p.py("from fieldforce.datasets import load_water\n"
         "from fieldforce.data.io import write_frames\n"
         "w = load_water(); small = [f for f in w if len(f.atoms) <= 6]\n"
         "write_frames(small[:40], 'data.xyz'); write_frames(small[:1], 'one.xyz')\n"
         "import ase.io; a = [f for f in w if f.atoms.info.get('config_type') == 'trimer'][0]\n"
         "t = a.atoms.copy(); t.info = {}; ase.io.write('trimer.xyz', t, format='extxyz')\n"
         "c = t.copy(); c.numbers[0] = 6; ase.io.write('carbon.xyz', c, format='extxyz')\n"
         "nd = [f.copy() for f in small[:40]]\n"
         "[f.labels.pop(k) for f in nd for k in ('dipole', 'polarizability')]\n"
         "write_frames(nd, 'nodip.xyz')")
    Path(p.work, "train.yaml").write_text(TRAIN.format(data="data.xyz", out="run"))
    p.ff("train", "train.yaml", "--no-progress")


def md_yaml(p: Probe, name: str, **kw) -> str:
    config = {"structure": "trimer.xyz", "model": "run/model.pt", "output": name,
              "ensemble": "nve", "steps": 40, "write_interval": 10, "timestep_fs": 0.25, **kw}
    path = Path(p.work, f"{name}.yaml")
    path.write_text(json.dumps(config))
    return path.name


def probes(p: Probe) -> dict[str, str]:
    out = {}
    data = Path(p.work, "data.xyz")
    before = data.read_bytes()
    r = p.ff("data", "split", "data.xyz", "data.xyz", "b.xyz")
    out["1 data split IN IN B"] = said(r) + ("; input intact" if data.read_bytes() == before
                                            else "; INPUT OVERWRITTEN")
    data.write_bytes(before)

    r = p.ff("md", md_yaml(p, "strong", field={"type": "static", "vector": [0, 0, 0.5]}),
             "--no-progress")
    log = Path(p.work, "strong", "md.log")
    warned = "beyond" in r.stderr or (log.exists() and "warning" in log.read_text())
    out["2a md at 0.5 V/Å, trained to 0.1"] = f"exit {r.returncode}; " + (
        "warned (stderr and md.log)" if warned else "silent")
    r = p.ff("label", "one.xyz", "strong.xyz", "--xc", "HF", "--basis", "sto-3g",
             "--efield", "0", "0", "10", "--max-seconds", "0", "--no-progress")
    out["2b label at 10 V/Å"] = f"exit {r.returncode}; " + (
        "warned" if "exceed" in r.stderr else "silent")

    model = Path(p.work, "run", "model.pt").read_bytes()
    r = p.ff("train", "train.yaml", "--no-progress")
    out["3 train into a directory with a model"] = said(r, 12) + (
        "; model kept" if Path(p.work, "run", "model.pt").read_bytes() == model
        else "; MODEL REPLACED")

    Path(p.work, "nodip.yaml").write_text(TRAIN.format(data="nodip.xyz", out="nodip"))
    r = p.ff("train", "nodip.yaml", "--no-progress")
    out["4 dipole weight, no dipole labels"] = said(r, 12)

    Path(p.work, "afile").write_text("x")
    Path(p.work, "bad_out.yaml").write_text(TRAIN.format(data="data.xyz", out="afile/run"))
    out["5a train output under a file"] = said(p.ff("train", "bad_out.yaml", "--no-progress"))
    out["5b md output is a file"] = said(p.ff("md", md_yaml(p, "afile"), "--no-progress"))
    out["5c data info --json missing dir"] = said(p.ff("data", "info", "data.xyz", "--json",
                                                       "new/dir/s.json"))
    out["5d eval --plots at a file"] = said(p.ff("eval", "run/model.pt", "data.xyz", "--plots",
                                                 "afile"))

    Path(p.work, "empty.xyz").write_text("")
    out["6a data info empty file"] = said(p.ff("data", "info", "empty.xyz"))
    r = p.ff("data", "convert", "empty.xyz", "conv.xyz")
    out["6b data convert empty file"] = said(r) + (
        "; wrote a file" if Path(p.work, "conv.xyz").exists() else "; nothing written")
    Path(p.work, "one.yaml").write_text(TRAIN.format(data="one.xyz", out="one_run"))
    r = p.ff("train", "one.yaml", "--no-progress")
    out["6c train on a one-frame file"] = said(r, 12) + (
        "; empty output dir left" if Path(p.work, "one_run").exists() else "")

    name = md_yaml(p, "cut")
    p.ff("md", name, "--no-progress")
    trajectory = Path(p.work, "cut", "trajectory.xyz")
    trajectory.write_text(trajectory.read_text()[:-120])
    Path(p.work, name).write_text(Path(p.work, name).read_text().replace('"steps": 40',
                                                                         '"steps": 60'))
    out["7 md --resume, truncated last frame"] = said(p.ff("md", name, "--no-progress",
                                                           "--resume"), 12)

    r = p.ff("label", "one.xyz", "xc.xyz", "--xc", "PBEX", "--no-progress")
    out["8 label --xc PBEX"] = said(r, 12)

    name = md_yaml(p, "finished")
    p.ff("md", name, "--no-progress")
    p.ff("md", name, "--no-progress", "--resume")
    summary = json.loads(Path(p.work, "finished", "summary.json").read_text())
    out["9 md --resume of a finished run"] = (
        f"steps_done {summary['steps_done']}, mean T {summary['mean_temperature_K']}")

    text = data.read_text()
    for key, bad in (("10a truncated frame", text[:len(text) // 2]),
                     ("10b atom-count line", "3 atoms" + text[text.index("\n"):]),
                     ("10c non-numeric value", text.replace("\nO ", "\nO zero ", 1)),
                     ("10d unknown element", text.replace("\nO ", "\nXx ", 1))):
        Path(p.work, "bad.xyz").write_text(bad)
        out[key] = said(p.ff("data", "info", "bad.xyz"))

    r = p.ff("md", md_yaml(p, "carbon", structure="carbon.xyz"), "--no-progress")
    left = Path(p.work, "carbon", "md.log")
    out["11 md with an unseen element"] = said(r, 16) + (
        "; header-only md.log left" if left.exists() else "; nothing written")

    Path(p.work, "cut.pt").write_bytes(model[:1000])
    out["12a truncated model file"] = said(p.ff("eval", "cut.pt", "data.xyz"))
    process = subprocess.Popen([str(p.bin / "fieldforce"), "md", md_yaml(p, "sigint",
                                                                          steps=100000),
                                "--no-progress"], cwd=p.work, env=ENV, text=True,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    log = Path(p.work, "sigint", "md.log")
    start = time.monotonic()
    while not (log.exists() and log.read_text().count("\n") > 2) and \
            time.monotonic() - start < 120:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=60)[1]
    out["12b Ctrl-C during md"] = " ".join(err.strip().splitlines()[-1].split()[:12])
    p.py("from fieldforce.data.io import read_frames, write_frames\n"
         "import numpy as np\nf = read_frames('one.xyz')[0]\n"
         "f.labels['energy'] = np.array(np.nan)\nwrite_frames([f], 'nan.xyz')")
    out["12c NaN scalar label"] = said(p.ff("data", "info", "nan.xyz"))
    r = p.ff("eval", "run/model.pt", "one.xyz")
    out["12d eval on one frame"] = ("nan %" if "nan %" in r.stdout else
                                    "n/a" if "n/a" in r.stdout else r.stdout[-60:])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, default=None, help="bin/ of the old install")
    parser.add_argument("--after", type=Path, default=ROOT / ".venv" / "bin")
    args = parser.parse_args()
    results = {}
    for name, bin_dir in (("before", args.before), ("after", args.after)):
        if bin_dir is None:
            continue
        work = Path(tempfile.mkdtemp(prefix=f"probe_{name}_"))
        try:
            p = Probe(bin_dir.resolve(), work)
            setup(p)
            results[name] = probes(p)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    keys = list(next(iter(results.values())))
    print("| probe | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for key in keys:
        print(f"| {key} | " + " | ".join(r[key].replace("|", "/") for r in results.values())
              + " |")
    path = ROOT / "benchmarks" / "results" / "reliability_probes.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
