"""GGUF files through transformers: dequantized once into a plain Hugging Face directory, cached.

transformers reads a ``.gguf`` file (weights, config, tokenizer and chat template
from its metadata) and dequantizes every tensor to float32, but the model it
returns is still marked quantized (``is_quantized``, ``hf_quantizer``,
``config.quantization_config``) and cannot be trained or saved as it is.
``convert_gguf`` loads it explicitly dequantized, clears those marks, and saves
model and tokenizer with ``save_pretrained`` into a temporary directory that is
then renamed into place, so an interrupted conversion never leaves a half-written
directory. Later loads read the plain directory (about 1 s for a 135 M model
instead of about 25 s for the GGUF parse).

The converted directory is cached under ``$ENTROSTAT_CACHE/gguf`` (default
``~/.cache/entrostat/gguf``) in a directory named after the file's stem, size and
the first 16 hex digits of its SHA-256, so a changed file is converted again and
an unchanged one is found at once. The hash of a file is remembered by (path,
size, modification time), so a second call does not read the file again. Weights
are saved in float32 (the dequantized values exactly); ``model.dtype`` casts at
load time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from entrostat.models.errors import ModelLoadError
from entrostat.models.hfutil import quiet_transformers

MARKER = "entrostat-gguf.json"  # written into every converted directory: the source file and its hash
HASH_CHUNK = 1 << 20


def default_root(cache_dir: str | Path | None = None) -> Path:
    """Where converted GGUF models live: ``cache_dir/gguf`` or ``$ENTROSTAT_CACHE/gguf``."""
    from entrostat.models.lab import default_cache_dir

    return (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "gguf"


def _check_gguf_file(gguf_path: str | Path) -> Path:
    path = Path(gguf_path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"GGUF file {path} does not exist; give the path of an existing .gguf file")
    if path.suffix.lower() != ".gguf":
        raise ModelLoadError(f"{path} does not end in .gguf; give a GGUF file or a Hugging Face model directory")
    return path.resolve()


def file_sha256(path: Path, root: Path) -> str:
    """SHA-256 of ``path`` (hex), remembered in ``root/hashes`` by (path, size, mtime)."""
    st = path.stat()
    memo = root / "hashes" / f"{hashlib.sha1(str(path).encode()).hexdigest()}.json"
    stamp = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        saved = json.loads(memo.read_text())
        if all(saved.get(k) == v for k, v in stamp.items()):
            return saved["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    _write_json_atomically(memo, {**stamp, "sha256": h.hexdigest()})
    return h.hexdigest()


def _write_json_atomically(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def cache_key(path: Path, sha256: str) -> str:
    """``<stem>-<size>-<sha256[:16]>``: the cache directory name of a GGUF file."""
    return f"{path.stem}-{path.stat().st_size}-{sha256[:16]}"


def converted_dir(gguf_path: str | Path, cache_dir: str | Path | None = None) -> tuple[Path, str]:
    """(cache directory the conversion of ``gguf_path`` goes to, the file's SHA-256); nothing is converted."""
    path = _check_gguf_file(gguf_path)
    root = default_root(cache_dir)
    sha = file_sha256(path, root)
    return root / cache_key(path, sha), sha


def is_converted(out_dir: Path, sha256: str) -> bool:
    """Whether ``out_dir`` holds a complete conversion of the file with this hash."""
    try:
        return json.loads((out_dir / MARKER).read_text()).get("sha256") == sha256 and (out_dir / "config.json").is_file()
    except (OSError, ValueError):
        return False


def convert_gguf(gguf_path: str | Path, out_dir: str | Path | None = None, *, progress: bool = True,
                 force: bool = False, cache_dir: str | Path | None = None) -> Path:
    """A plain Hugging Face directory (float32 weights, tokenizer, chat template) converted from ``gguf_path``.

    ``out_dir`` None: the cache directory (see the module docstring). A directory that
    already holds a conversion of the same file (same SHA-256) is returned at once
    unless ``force``; an ``out_dir`` holding anything else is refused unless ``force``,
    which replaces it.
    """
    path = _check_gguf_file(gguf_path)
    final, sha = converted_dir(path, cache_dir)
    if out_dir is not None:
        final = Path(out_dir).expanduser().resolve()
    if not force and is_converted(final, sha):
        return final
    if final.exists() and not force and any(final.iterdir()):
        raise ModelLoadError(
            f"{final} exists and does not hold a conversion of {path.name}; choose another output directory "
            "or pass --force (force=True) to replace it"
        )
    t0 = time.perf_counter()
    if progress:
        print(f"converting {path.name} ({path.stat().st_size / 1e6:.0f} MB) to a plain transformers model in "
              f"{final} (once; later loads read that directory)", file=sys.stderr)
    model, tokenizer = load_gguf(path, progress=progress)
    marker = {"source": str(path), "name": path.name, "size": path.stat().st_size, "sha256": sha,
              "dtype": str(model.dtype).removeprefix("torch.")}
    _save_atomically(model, tokenizer, final, marker, replace=force)
    if progress:
        print(f"converted in {time.perf_counter() - t0:.1f} s: {final}", file=sys.stderr)
    return final


def load_gguf(path: Path, *, progress: bool = True):
    """(model, tokenizer) read from a GGUF file by transformers, dequantized and no longer marked quantized."""
    import torch

    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError as exc:
        raise ModelLoadError("reading a .gguf file needs the gguf package: pip install gguf (or entrostat[real])") from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {}
    try:  # transformers ≥ 5 may keep GGUF blocks packed; ask for a dense model explicitly
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # older transformers always dequantize GGUF weights
        pass
    try:
        with quiet_transformers(not progress):
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                                         local_files_only=True, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    except (ValueError, OSError, KeyError, NotImplementedError) as exc:
        raise ModelLoadError(f"transformers could not read {path} as a causal LM with its tokenizer: {exc}") from exc
    return _as_plain_model(model, path), tokenizer


def _as_plain_model(model, path: Path):
    """Clear the quantization marks of a dequantized model; refuse one that still holds packed blocks."""
    packed = [n for n, m in model.named_modules() if any(s in type(m).__name__.lower() for s in ("gguf", "ggml"))]
    if packed:
        raise ModelLoadError(
            f"transformers kept {len(packed)} layers of {path.name} packed (e.g. {packed[0]}); upgrade transformers "
            "or convert the file with llama.cpp's convert scripts to a Hugging Face directory"
        )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    for name in ("hf_quantizer", "quantization_method"):
        if hasattr(model, name):
            delattr(model, name)
    if "quantization_config" in getattr(model.config, "__dict__", {}):
        del model.config.quantization_config
    model.is_quantized = False
    return model


def _save_atomically(model, tokenizer, final: Path, marker: dict, *, replace: bool) -> None:
    """save_pretrained into a temporary sibling of ``final``, then one rename (an old ``final`` moved aside first)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}-*"):  # left by a killed conversion more than an hour ago
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary directory
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps(marker, indent=2))
        if final.exists() and (replace or not any(final.iterdir())):
            old = final.with_name(f".{final.name}-old-{os.getpid()}")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    except OSError:
        if not is_converted(final, marker["sha256"]):  # not a lost race with another process: a real error
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
