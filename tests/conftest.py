"""Shared fixtures: both backends, the optional PyTorch oracle and the shared real-data folder."""

import os
from pathlib import Path

import numpy as np
import pytest

from captionrnn import threads
from captionrnn.backend import BACKENDS, use_backend

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per backend ('numba' and 'numpy'), with one BLAS thread: there the Numba
    backend's recurrent loops use their packed multiply (captionrnn.kernels.gemm). With more BLAS
    threads they call np.matmul, which the tests outside this fixture and CI's
    CAPTIONRNN_GEMM=blas run cover."""
    with use_backend(request.param), threads.limit(1):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(231)


@pytest.fixture
def torch():
    """PyTorch in float64 for autograd oracles; the test skips cleanly when torch is absent."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")
    return torch


def _shared_data():
    env = os.environ.get("CAPTIONRNN_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture
def flickr8k_dir():
    """The real Flickr8k fixture in ../shared/data/flickr8k (skip when absent, as on a user's
    machine)."""
    path = _shared_data() / "flickr8k"
    if not (path / "Flickr8k.token.txt").is_file():
        pytest.skip(
            f"real Flickr8k fixture not found at {path} "
            "(it exists only on the developers' machines)"
        )
    return path
