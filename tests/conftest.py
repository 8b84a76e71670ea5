"""Shared fixtures: real data under ../shared/data, and a private decoded-image cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    reason = f"real data {path} is absent (it lives in ../shared/data beside the checkout)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this test must not skip")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; skips when absent, fails when absent under CI."""
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def mnist_dir(shared_data: Path) -> Path:
    return _require(shared_data / "mnist")


@pytest.fixture(scope="session")
def celeba_dir(shared_data: Path) -> Path:
    return _require(shared_data / "celeba" / "img_align_celeba_89x109")


@pytest.fixture(scope="session")
def wifi_file(shared_data: Path) -> Path:
    return _require(shared_data / "wifi" / "wifi_localization.txt")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the decoded-image cache of the test session out of the user's ~/.cache."""
    os.environ["ZSPACE_CACHE_DIR"] = str(tmp_path_factory.mktemp("zspace-cache"))
