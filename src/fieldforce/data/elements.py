"""Per-element constants that are data, not physics code: Pauling electronegativities
(CRC Handbook of Chemistry and Physics values), used where a model needs a chemical
convention (the global sign of latent charges learned at zero field)."""

from __future__ import annotations

#: Pauling electronegativity by atomic number (noble gases He, Ne, Ar omitted: none).
PAULING = {
    1: 2.20, 3: 0.98, 4: 1.57, 5: 2.04, 6: 2.55, 7: 3.04, 8: 3.44, 9: 3.98,
    11: 0.93, 12: 1.31, 13: 1.61, 14: 1.90, 15: 2.19, 16: 2.58, 17: 3.16,
    19: 0.82, 20: 1.00, 21: 1.36, 22: 1.54, 23: 1.63, 24: 1.66, 25: 1.55, 26: 1.83,
    27: 1.88, 28: 1.91, 29: 1.90, 30: 1.65, 31: 1.81, 32: 2.01, 33: 2.18, 34: 2.55,
    35: 2.96, 36: 3.00, 37: 0.82, 38: 0.95, 39: 1.22, 40: 1.33, 41: 1.6, 42: 2.16,
    43: 1.9, 44: 2.2, 45: 2.28, 46: 2.20, 47: 1.93, 48: 1.69, 49: 1.78, 50: 1.96,
    51: 2.05, 52: 2.1, 53: 2.66, 54: 2.6, 55: 0.79, 56: 0.89, 57: 1.10, 58: 1.12,
    72: 1.3, 73: 1.5, 74: 2.36, 75: 1.9, 76: 2.2, 77: 2.20, 78: 2.28, 79: 2.54,
    80: 2.00, 81: 1.62, 82: 2.33, 83: 2.02,
}


def pauling_electronegativity(number: int) -> float:
    """Pauling electronegativity of element ``number`` (0 where none is tabulated, so such
    an element is never the most electronegative of a set)."""
    return PAULING.get(int(number), 0.0)


__all__ = ["PAULING", "pauling_electronegativity"]
