"""A minimal PEP 691 (JSON simple API) client: the files of a project and their sha256."""

from __future__ import annotations

import requests

from ftimg.errors import LockError

ACCEPT = "application/vnd.pypi.simple.v1+json"


def project_files(index_url: str, name: str, session: requests.Session) -> dict[str, dict]:
    """filename -> {"url", "sha256"} for every file of project `name` on the index."""
    url = f"{index_url.rstrip('/')}/{name}/"
    try:
        response = session.get(url, headers={"Accept": ACCEPT}, timeout=60)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise LockError(f"cannot read {url}: {exc}. Check the index URL and your network.") from exc
    files = {}
    for entry in response.json().get("files", []):
        sha256 = entry.get("hashes", {}).get("sha256")
        if sha256:
            files[entry["filename"]] = {"url": entry["url"], "sha256": sha256}
    return files
