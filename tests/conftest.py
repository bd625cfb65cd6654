"""Test-wide settings: a private cache directory (never the user's ~/.cache/hsd) and a fixture
for the shared real data, which skips with the reason when ``../shared`` is absent."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HSD_CACHE_DIR", str(tmp_path_factory.mktemp("hsd-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real event data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA
