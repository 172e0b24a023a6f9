from pathlib import Path

import pytest
from project_paths import ROOT


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


def pytest_collection_modifyitems(items):
    """Tests that replace the shared image run last, so that if one fails the others still test a good image."""
    items.sort(key=lambda item: item.get_closest_marker("rebuilds_image") is not None)
