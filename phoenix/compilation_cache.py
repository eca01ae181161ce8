"""XLA compilations persist on disk: the next Phoenix start, `foryou train`, `foryou demo` or test
loads a model's compiled step instead of compiling it again (seconds each on CPU).

Imported (for this side effect) by phoenix/layers.py, which every model builds on. JAX's own
`JAX_COMPILATION_CACHE_DIR` wins; set it to an empty string to turn caching off. The default is
`$XDG_CACHE_HOME/foryou/xla` (`~/.cache/foryou/xla`); JAX keys each entry by the program, the
devices, the XLA flags and its own version, so a stale entry is never loaded (docs/phoenix.md).
"""
from __future__ import annotations

import os
from pathlib import Path

import jax

# Compilations quicker than this are not worth a file read and write.
MIN_COMPILE_TIME_S = 0.2


def default_directory() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "foryou" / "xla"


def enable() -> str | None:
    """Turns the cache on (unless the environment says otherwise); returns its directory."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:  # JAX reads it itself ("" = off)
        return os.environ["JAX_COMPILATION_CACHE_DIR"] or None
    directory = default_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: run uncached rather than fail
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    return str(directory)


enable()
