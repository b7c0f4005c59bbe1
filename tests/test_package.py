"""The package facade: lazy (no torch for units or --help), complete, and consistent."""

from __future__ import annotations

import subprocess
import sys

import fieldforce

HEAVY = ("torch", "featomic", "metatensor", "torchpme", "ase", "scipy", "matplotlib")


def loaded_after(code: str) -> list[str]:
    """Heavy top-level packages in sys.modules after running ``code`` in a fresh Python."""
    probe = (f"import sys\n{code}\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_units_and_help_load_no_heavy_package():
    assert loaded_after("import fieldforce.units") == []
    assert loaded_after("import fieldforce; fieldforce.__version__") == []
    help_code = ("import contextlib, io\nfrom fieldforce.cli.main import main\n"
                 "with contextlib.redirect_stdout(io.StringIO()):\n"
                 "    try:\n        main(['--help'])\n    except SystemExit:\n        pass")
    assert loaded_after(help_code) == []
    # the probe can fail: a public name that needs torch does load it
    assert "torch" in loaded_after("import fieldforce; fieldforce.FieldForceCalculator")


def test_every_public_name_resolves():
    for name in fieldforce.__all__:
        assert getattr(fieldforce, name) is not None, name
    assert set(fieldforce.__all__) <= set(dir(fieldforce))
    assert fieldforce.units is __import__("fieldforce.units").units
    from fieldforce.simulation import FieldForceCalculator

    assert fieldforce.FieldForceCalculator is FieldForceCalculator


def test_the_version_has_one_source():
    from importlib.metadata import version

    from fieldforce.version import __version__

    assert fieldforce.__version__ == __version__ == version("fieldforce")
