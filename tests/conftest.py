"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRE_DATA_ENV = "PLM_NAS_REQUIRE_DATA"  # CI sets it to 1: missing data fails instead of skipping


def skip_or_fail_missing(reason: str) -> None:
    """Skip a test whose data is absent, or fail it when ``PLM_NAS_REQUIRE_DATA=1``."""
    if os.environ.get(REQUIRE_DATA_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_DATA_ENV}=1 requires it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """The offline GLUE copy in the original TSV layout: ``$GLUE_DIR``, else ``../shared/data/glue``."""
    path = Path(os.environ.get("GLUE_DIR") or REPO_ROOT.parent / "shared" / "data" / "glue").resolve()
    if not path.is_dir():
        skip_or_fail_missing(f"no GLUE data folder at {path}; set GLUE_DIR")
    return path
