"""Small helpers around transformers shared by the model loaders."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def quiet_transformers(enabled: bool = True):
    """Silence transformers' progress bars and warnings for the duration (no-op when not ``enabled``)."""
    if not enabled:
        yield
        return
    from transformers.utils import logging as hf_logging

    was_on, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if was_on:
            hf_logging.enable_progress_bar()
