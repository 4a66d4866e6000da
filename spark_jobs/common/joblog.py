"""Logging for jobs: one line per stage saying what it read and wrote, to stderr (EMR keeps it per step)."""

from __future__ import annotations

import logging
import sys


def get_logger(job: str) -> logging.Logger:
    """A logger named after the job that prints ``time level job: message`` to stderr."""
    logger = logging.getLogger(f"recsys.{job}")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
