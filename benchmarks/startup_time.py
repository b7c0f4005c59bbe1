"""Start-up cost of the package: `fieldforce --help` and `import fieldforce.units`.

Each command runs in a fresh interpreter, ``--repeat`` times; the table gives the median
wall time and the number of modules loaded, for this checkout and, with ``--peer``, for
another installation (e.g. the version before the lazy facade) measured in the same run,
against the bare interpreter (``python -c pass``) as the floor.

    python benchmarks/startup_time.py --peer /path/to/other/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "python -c pass": "pass",
    "import fieldforce.units": "import fieldforce.units",
    "fieldforce --help": ("import contextlib, io\nfrom fieldforce.cli.main import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()):\n"
                          "    try:\n        main(['--help'])\n    except SystemExit:\n"
                          "        pass"),
}
COUNT = "\nimport sys\nprint(len(sys.modules), 'torch' in sys.modules)"


def measure(python: str, code: str, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run([python, "-c", code + COUNT], capture_output=True, text=True,
                             check=True)
        times.append(time.perf_counter() - start)
    modules, torch = out.stdout.split()[-2:]
    return {"median_s": statistics.median(times), "min_s": min(times),
            "modules": int(modules), "torch_loaded": torch == "True"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", default=None, help="python of another fieldforce install")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" /
                        "startup_time.json")
    args = parser.parse_args()
    pythons = {"this checkout": sys.executable}
    if args.peer:
        pythons["peer"] = args.peer
    results = {name: {label: measure(python, code, args.repeat)
                      for label, code in COMMANDS.items()}
               for name, python in pythons.items()}
    print("| install | command | median s | min s | modules | torch loaded |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        for label, r in rows.items():
            print(f"| {name} | {label} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
                  f"{r['modules']} | {r['torch_loaded']} |")
    if args.peer:
        for label in ("import fieldforce.units", "fieldforce --help"):
            ratio = results["peer"][label]["median_s"] / results["this checkout"][label][
                "median_s"]
            print(f"{label}: peer / this = {ratio:.1f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"repeat": args.repeat, "pythons": pythons,
                                     "results": results}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
