"""`ftimg doctor` against the real engine: it reports what it finds and leaves nothing behind."""

import pytest
from tracked import ftimg

pytestmark = pytest.mark.docker


def test_doctor_reports_memlock_and_leaves_no_container(client, train_image):
    before = {container.id for container in client.containers.list(all=True)}
    code, out, err = ftimg("doctor")
    assert "memlock" in out, out + err
    # The memlock probe starts a container the engine may refuse to start; it must not stay behind.
    assert {container.id for container in client.containers.list(all=True)} == before
    assert code in (0, 1), err
