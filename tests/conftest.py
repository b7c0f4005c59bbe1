"""Fixtures shared by the model, calculator and MD tests."""

import pytest
import torch

from fieldforce.datasets import load_water


@pytest.fixture(scope="module")
def one_thread():
    # Tiny systems: several intra-op threads only contend with each other (and with other
    # processes on a busy machine), which can make each evaluation many times slower.
    # Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def water():
    """The shipped water frames (read once per test module)."""
    return load_water()
