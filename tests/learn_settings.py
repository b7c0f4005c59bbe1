"""The one small on-the-fly learning setup the learn tests share: a water molecule in
0.1 V/Å, PySCF HF/STO-3G, kernel heads with few sparse points, Langevin at 800 K."""


def learn_config(structure: str, output: str, steps: int, max_dft_calls: int) -> dict:
    """A ``fieldforce learn`` configuration (paths relative to the config's folder)."""
    return {"structure": structure, "output": output,
            "model": {"family": "response", "head": "gpr", "species": [1, 8],
                      "descriptor": {"max_radial": 3, "max_angular": 2},
                      "sparse_points": 20, "response_sparse_points": 10, "folds": 2},
            "md": {"ensemble": "langevin", "temperature_K": 800, "timestep_fs": 0.5,
                   "steps": steps, "write_interval": 10, "seed": 1,
                   "field": {"type": "static", "vector": [0, 0, 0.1]}},
            "label": {"backend": "pyscf",
                      "settings": {"xc": "HF", "basis": "sto-3g", "density_fit": False,
                                   "threads": 1}},
            "initial_frames": 3, "rattle_A": 0.02, "threshold_relative": 1.5,
            "check_interval": 10, "max_dft_calls": max_dft_calls}
