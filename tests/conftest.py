"""Shared test settings: small thread counts, a private cache, and the real-data locator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Two cores: one intra-op thread pool per process is plenty and avoids oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# No test may reach the network for weights; pretrained loads fail fast and say why.
os.environ.setdefault("MEDSYNTH_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Unit tests use tiny tensors: one intra-op thread is as fast, and immune to oversubscription
    when the 2-core machine is shared (measured: 2 threads each in two busy processes ran ~10x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (small real datasets); tests that need it skip in a fresh clone."""
    from medsynth.nbutils import shared_data_dir

    path = shared_data_dir()
    if path is None:
        pytest.skip("real data folder ../shared/data is absent (a fresh clone has none)")
    return path
