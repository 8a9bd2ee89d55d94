"""Eval fixtures: the project's own CTI-Bench-layout TSVs (shared server and model fixtures: tests/conftest.py)."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
