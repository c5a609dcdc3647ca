"""Hugging Face hub names: loaded from the local hub cache, or from the hub when it is reachable.

Before anything is downloaded the hub is probed once (one HTTP HEAD with a 3 s
timeout, in a thread given 5 s in all, so a hanging DNS lookup cannot stall the
run); with ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set, or no answer, the
load fails at once with a ``ModelLoadError`` saying how to use a local model
instead, rather than entering transformers' retry loop.
"""

from __future__ import annotations

import os
import re
import threading

from entrostat.models.errors import ModelLoadError

PROBE_TIMEOUT_S = 3.0
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")  # "org/name" or "name"
TRUTHY = {"1", "true", "yes", "on"}


def offline_reason() -> str | None:
    """Why the hub must not be used (an offline variable is set), or None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in TRUTHY:
            return f"{var}={os.environ[var]} is set"
    return None


def hub_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except ImportError:
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the hub endpoint answers an HTTP HEAD (any status) within ``timeout`` seconds."""
    answered: list[bool] = []

    def probe() -> None:
        try:
            from huggingface_hub.utils import get_session

            get_session().head(hub_endpoint(), timeout=timeout)
            answered.append(True)
        except Exception:  # noqa: BLE001 - any failure means: not reachable
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 2.0)
    return bool(answered)


def in_local_cache(name: str) -> bool:
    """Whether the hub cache on this machine already holds ``name``'s config (usable offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - a malformed name, no huggingface_hub: not cached
        return False


def no_hub_message(name: str, reason: str) -> str:
    return (
        f"model.name = {name!r} is not an existing local path, so it would come from the Hugging Face hub, but no "
        f"hub is reachable ({reason}). Point model.name at a local Hugging Face model directory (config.json, "
        "weights, tokenizer files), at a .gguf file (converted once and cached), or at a prepared alias, e.g. "
        "`entrostat models prepare smollm2-135m` then model.name=smollm2-135m (`entrostat models list` shows the aliases)"
    )


def check_hub_name(name: str) -> bool:
    """True when ``name`` can be loaded without downloading (it is in the local hub cache).

    Otherwise returns False when the hub is reachable, and raises ModelLoadError when it
    is not, or when ``name`` is no hub id at all.
    """
    if not HUB_ID.match(name):
        raise ModelLoadError(
            f"model.name = {name!r}: no such local directory or file, and not a hub id (org/name) either; give "
            "'lab', a known alias (`entrostat models list`), a local Hugging Face model directory or a .gguf file"
        )
    if in_local_cache(name):
        return True
    reason = offline_reason()
    if reason is None and not hub_reachable():
        reason = f"{hub_endpoint()} did not answer within {PROBE_TIMEOUT_S:.0f} s"
    if reason is not None:
        raise ModelLoadError(no_hub_message(name, reason))
    return False
