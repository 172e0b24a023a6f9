"""Two clean builds of a profile from the same lock have the same filesystem content.

The second build replaces the first under the same tags (`ftimg build --no-cache`
does the same): the first stack is removed before the rebuild, so the test never
holds two ~7 GB stacks plus a builder stage on the disk at once. It runs after
every other test (marker `rebuilds_image`), so a failed rebuild fails only itself.
The rebuild fetches the wheelhouse and makes the base itself when they are missing,
as `ftimg build --no-cache` does: the engine may hold the stack from an earlier run
on a machine whose wheelhouse is gone.
"""

import pytest

from ftimg import engine
from ftimg.image.build import build_profile
from ftimg.image.labels import train_tags
from ftimg.image.verify import content_digest
from ftimg.paths import ProjectPaths

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.rebuilds_image]


def test_clean_rebuild_has_the_same_content_digest(client, profile, stack_image, train_image, project_root):
    first_id = engine.inspect_image(client, train_image)["Id"]
    first, files = content_digest(client, train_image)
    for ref in [*train_tags(profile), stack_image]:
        engine.remove_image(client, ref)
    assert not engine.image_exists(client, stack_image)

    result = build_profile(client, ProjectPaths(project_root), profile, nocache=True)

    assert result.stack_built and result.stack_image == stack_image
    assert result.image_id != first_id, "the rebuild reused the cache; it proves nothing"
    second, _ = content_digest(client, train_image)
    assert files > 10000
    assert first == second
