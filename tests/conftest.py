"""Every test runs offline against a private user directory, never the developer's own.

Fixtures shared by several areas live here: the loopback OpenAI-compatible test server
(tests/oai_server.py) and the real SmolLM2 GGUF backend, loaded once per session.
"""

import os
from contextlib import contextmanager

import pytest
from oai_server import start_server


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("cyberslm-home")
    os.environ["CYBERSLM_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    yield home


@pytest.fixture()
def oai():
    """A fresh server per test, so each test sees only its own requests."""
    server, state = start_server()
    state.url = f"http://127.0.0.1:{server.server_port}/v1"
    yield state
    server.shutdown()
    server.server_close()


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


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2 GGUF on CPU, loaded once per session (HFBackend caches per process)."""
    from cyberslm.models.backend import load_backend

    with one_torch_thread():
        return load_backend("hf:smollm2", device="cpu")


@pytest.fixture()
def single_thread():
    with one_torch_thread():
        yield
