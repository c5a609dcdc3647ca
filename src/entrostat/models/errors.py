"""The one error type of model loading (kept apart so every loader module can raise it)."""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says why and what to do."""
