"""Logging setup: rank 0 speaks at INFO, other ranks only warn."""

import logging
import os
import sys


def setup_logging() -> logging.Logger:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO if rank == 0 else logging.WARNING)
    return logging.getLogger("ftimg_jobs")
