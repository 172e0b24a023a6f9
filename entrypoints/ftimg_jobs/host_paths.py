"""Show the user's own paths in error messages: ``ftimg run`` mounts host paths under /mnt/host.

``ftimg run`` passes FTIMG_PATH_MAP, a JSON object from each container path it
wrote into the job's flags to the value the user typed (``./data.jsonl``); any
other path under the mount prefix is shown as the host's absolute path. Pure.
"""

import json
import re

PATH_MAP_ENV = "FTIMG_PATH_MAP"
HOST_PREFIX = "/mnt/host"


def host_paths(message: str, path_map_json: str) -> str:
    """``message`` with container paths replaced by what the user typed, longest first."""
    try:
        path_map = json.loads(path_map_json) if path_map_json else {}
    except json.JSONDecodeError:
        path_map = {}
    for container in sorted(path_map, key=len, reverse=True):
        # Whole paths only: the map's /x/out must not rewrite /x/output.
        message = re.sub(re.escape(container) + r"(?![\w-]|\.\w)", lambda _: path_map[container], message)
    # A prefix followed by "/" only, so /mnt/hostname is left alone.
    return re.sub(re.escape(HOST_PREFIX) + r"(?=/)", "", message)
