"""Neighbour pairs: vesin's path against ASE's, and spans vesin cannot bin."""

import subprocess
import sys

import numpy as np
import pytest

from fieldforce.neighbors import _ase_pairs, neighbor_pairs


def _canonical(i, j, shifts, positions, cell):
    """Pairs as a sorted set of (i, j, S) with their distances (for comparison)."""
    d = np.linalg.norm(positions[j] - positions[i] + shifts @ cell, axis=1)
    rows = sorted(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist()), d.round(9), strict=True))
    return rows


@pytest.mark.parametrize("pbc", [(True, True, True), (True, True, False), (False,) * 3])
@pytest.mark.parametrize("full", [True, False])
def test_ase_fallback_finds_the_pairs_vesin_finds(pbc, full):
    rng = np.random.default_rng(3)
    # a small skewed cell and a cutoff longer than it: atoms pair with their own images
    cell = np.array([[4.0, 0.0, 0.0], [1.0, 4.5, 0.0], [0.5, 0.3, 5.0]])
    positions = rng.uniform(0, 1, (9, 3)) @ cell
    cutoff = 4.7
    expected = _canonical(*neighbor_pairs(positions, cell, pbc, cutoff, full), positions, cell)
    got = _canonical(*_ase_pairs(positions, cell, np.array(pbc), cutoff, full), positions, cell)
    if pbc[0]:
        assert any(a == b for a, b, *_ in expected)  # the self-image case is exercised
    # a half list keeps one of (i, j, S) and (j, i, -S): compare as unordered pairs
    if not full:
        def unordered(rows):
            return sorted(min((a, b, s), (b, a, tuple(-np.array(s)))) + (d,)
                          for a, b, s, d in rows)
        expected, got = unordered(expected), unordered(got)
    assert got == expected


@pytest.mark.parametrize("pbc, far", [(False, [1e5, 0.0, 0.0]), ((True, True, False),
                                                                  [0.0, 0.0, 2e6])])
def test_a_far_atom_does_not_kill_the_process(pbc, far):
    # vesin 0.6 dies of SIGFPE on these spans; run in a child so a regression fails this
    # test instead of ending the test session
    code = f"""
import numpy as np
from fieldforce.neighbors import neighbor_pairs
p = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.0, 0.0], {far}])
i, j, s = neighbor_pairs(p, np.diag([10.0, 10.0, 10.0]), {pbc}, 1.0)
print(sorted(zip(i.tolist(), j.tolist())))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[(0, 2)]"
