"""Eval fixtures: the project's own CTI-Bench-layout TSVs, a loopback OpenAI-compatible server, SmolLM2."""

from contextlib import contextmanager
from pathlib import Path

import pytest
from oai_server import start_server

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture()
def oai():
    """A fresh server per test, so each test sees only its own requests."""
    server, state = start_server()
    state.url = f"http://127.0.0.1:{server.server_port}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2 GGUF on CPU, loaded once per session (HFBackend caches per process)."""
    from cyberslm.models.backend import load_backend

    with one_torch_thread():
        return load_backend("hf:smollm2", device="cpu")


@contextmanager
def one_torch_thread():
    """One intra-op thread while a tiny model runs: on a shared 2-core machine, two spinning OpenMP
    threads competing with other jobs are ~3x slower than one. Restored afterwards for other tests."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture()
def single_thread():
    with one_torch_thread():
        yield
