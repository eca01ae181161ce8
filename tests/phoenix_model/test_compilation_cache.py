"""The on-disk XLA cache (phoenix/compilation_cache.py): on by default under XDG_CACHE_HOME,
JAX's own variable wins, an empty one turns it off."""
from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import jax, jax.numpy as jnp
import phoenix.layers  # the models' base module turns the cache on
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
print(jax.config.jax_compilation_cache_dir)
print(float(jax.jit(lambda x: jnp.sin(x) * 3)(jnp.ones(7)).sum()))
"""


def run(tmp_path, **env_overrides) -> str:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu", **env_overrides)
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def test_compilations_are_written_under_the_user_cache_directory(tmp_path):
    directory = tmp_path / "xdg" / "foryou" / "xla"
    assert run(tmp_path) == str(directory)
    assert any(directory.iterdir())


def test_jax_variable_wins_and_empty_turns_it_off(tmp_path):
    mine = tmp_path / "mine"
    assert run(tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine)) == str(mine)
    assert any(mine.iterdir())
    assert run(tmp_path, JAX_COMPILATION_CACHE_DIR="") in ("None", "")
    assert not (tmp_path / "xdg").exists()
