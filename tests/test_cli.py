"""The `fieldforce` command as a user meets it."""

import os
import subprocess
import sys

import fieldforce
from fieldforce.cli.main import main


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "fieldforce.cli.main", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert fieldforce.__version__ in out
    assert main([]) == 2


def test_demo_runs_and_checks_physics(capsys):
    # a small basis keeps this fast; the shipped settings are exercised by `make demo`
    assert main(["demo", "--dft-check", "--basis", "6-31g", "--efield", "0", "0.02", "0"]) == 0
    out = capsys.readouterr().out
    assert "frames        620" in out
    asr = float(out.split("max|sum_i Z*_i| = ")[1].split()[0])
    assert asr < 1e-4


def test_debug_flag_shows_traceback(tmp_path):
    missing = str(tmp_path / "missing.xyz")
    quiet = subprocess.run([sys.executable, "-m", "fieldforce.cli.main", "data", "info", missing],
                           capture_output=True, text=True)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-m", "fieldforce.cli.main", "--debug", "data", "info",
                           missing], capture_output=True, text=True)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


def test_dataset_scripts_report_bad_input_through_the_same_boundary(tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("garbage\n")
    command = [sys.executable, "-m", "fieldforce.datasets.make_metal", "label", str(bad),
               str(tmp_path / "out.xyz")]
    quiet = subprocess.run(command, capture_output=True, text=True)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert quiet.stderr.strip() == (
        f"python -m fieldforce.datasets.make_metal: error: {bad}, frame 0: line 1: "
        "expected the number of atoms of frame 0, got 'garbage'")
    assert not (tmp_path / "out.xyz").exists()
    loud = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "FIELDFORCE_DEBUG": "1"})
    assert loud.returncode != 0 and "Traceback" in loud.stderr
