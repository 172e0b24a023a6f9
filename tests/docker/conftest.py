"""Docker tier: the real engine and the image `make test` builds first.

Every image a test creates is tracked and removed at teardown.
"""

import os

import pytest

from ftimg import engine
from ftimg.image.context import recipe_digest
from ftimg.image.labels import stack_tag, train_tags
from ftimg.lock import lockfile

PROFILE = os.environ.get("FTIMG_TEST_PROFILE", "cu121-torch2.1")


@pytest.fixture(scope="session")
def client():
    return engine.connect()


@pytest.fixture(scope="session")
def lock(project_root):
    return lockfile.load(project_root / "images.lock")


@pytest.fixture(scope="session")
def profile(lock):
    return lock.profile(PROFILE)


@pytest.fixture(scope="session")
def train_image(client, profile):
    tag = train_tags(profile)[0]
    if not engine.image_exists(client, tag):
        pytest.fail(f"{tag} is not built; run `make test` (it builds the image first) or `ftimg build {PROFILE}`")
    return tag


@pytest.fixture(scope="session")
def stack_image(client, profile, train_image, project_root):
    return stack_tag(profile, recipe_digest(project_root / "docker"))


@pytest.fixture
def scratch_images(client):
    """Tags a test creates; removed afterwards even when the test fails."""
    created = []
    yield created
    for ref in created:
        engine.remove_image(client, ref)
