"""Training on a device mesh (docs/scaling.md): `foryou train ... --mesh data=N[,model=M]`.

The same jitted step as on one device; only where the arrays live changes. Inside
`use_mesh(mesh)`, the loop (phoenix/training/loop.py) places the parameters and each
minibatch with NamedSharding and jit follows those shardings (XLA inserts the collectives):
- every minibatch leaf is split by rows over `data`;
- hash-embedding tables (leaves under a "*tables*" key) are row-sharded over `data`, or, when
  the row count (a prime hash modulus) does not divide, split along the embedding width;
- with `model` > 1 the widest other matrices are column-sharded over `model`.
A leaf whose size does not divide stays replicated. One device is the trivial mesh, same code.
With several processes (distributed.py) the mesh spans all their devices and each process
supplies its own rows of every minibatch.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXES = ("data", "model")
_active: list[Mesh] = []


def parse_mesh(text: str) -> dict[str, int]:
    """ "data=4,model=2" -> {"data": 4, "model": 2} (missing axes are 1)."""
    shape = {"data": 1, "model": 1}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, size = part.partition("=")
        if not sep or name not in AXES or not size.isdigit() or int(size) < 1:
            raise ValueError(f"--mesh: {part!r} is not data=N or model=M (N, M >= 1)")
        shape[name] = int(size)
    return shape


def make_mesh(shape: dict[str, int], devices: list | None = None) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    need = shape["data"] * shape["model"]
    if need > len(devices):
        raise ValueError(f"--mesh needs {need} devices, {len(devices)} available "
                         "(on CPU: XLA_FLAGS=--xla_force_host_platform_device_count=N)")
    return Mesh(np.array(devices[:need]).reshape(shape["data"], shape["model"]), AXES)


@contextlib.contextmanager
def use_mesh(mesh: Mesh) -> Iterator[Mesh]:
    _active.append(mesh)
    try:
        yield mesh
    finally:
        _active.pop()


def current() -> Mesh | None:
    return _active[-1] if _active else None


def _names(path) -> list[str]:
    return [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", "")))) for k in path]


def param_spec(mesh: Mesh, path, leaf) -> P:
    data, model = mesh.shape["data"], mesh.shape["model"]
    shape: tuple[int, ...] = getattr(leaf, "shape", ())
    if len(shape) < 2:
        return P()
    if any("tables" in n for n in _names(path)):  # (..., rows, dim): shard the rows
        rows = len(shape) - 2
        spec: list[str | None] = [None] * len(shape)
        spec[rows] = "data"
        if shape[rows] % data:  # hash moduli are primes: split the embedding width instead
            spec[rows], rows = None, len(shape) - 1
            spec[rows] = "data"
        return P(*spec) if shape[rows] % data == 0 else P()
    if model > 1 and len(shape) == 2 and shape[1] % model == 0 and shape[1] >= 4 * model:
        return P(None, "model")
    return P()


def place_params(params: Any) -> Any:
    """The parameters on the active mesh (unchanged without one)."""
    mesh = current()
    if mesh is None:
        return params
    several = jax.process_count() > 1

    def put(path, leaf):
        if several and getattr(leaf, "is_fully_addressable", True):
            leaf = np.asarray(leaf)  # the same value in every process: each puts its own shards
        return jax.device_put(leaf, NamedSharding(mesh, param_spec(mesh, path, leaf)))
    return jax.tree_util.tree_map_with_path(put, params)


def place_batch(batch: Any) -> Any:
    """A minibatch split by rows over `data` (unchanged without a mesh). With several
    processes (distributed.py) each passes its own rows (`local_rows` of them) and the result
    is the global minibatch, every process's rows in process order."""
    mesh = current()
    if mesh is None:
        return batch
    if jax.process_count() > 1:
        sharding = NamedSharding(mesh, P("data"))
        return jax.tree.map(lambda leaf: jax.make_array_from_process_local_data(sharding, np.asarray(leaf)), batch)

    def put(leaf):
        spec = P("data") if np.ndim(leaf) >= 1 and np.shape(leaf)[0] % mesh.shape["data"] == 0 else P()
        return jax.device_put(leaf, NamedSharding(mesh, spec))
    return jax.tree.map(put, batch)


def local_rows(batch_size: int) -> int:
    """This process's rows of a global minibatch of `batch_size` (all of them for one process)."""
    count = jax.process_count()
    if batch_size % count:
        raise ValueError(f"--batch-size {batch_size} does not split evenly over {count} processes")
    return batch_size // count


def local_params(params: Any) -> Any:
    """After training in several processes: every process's full copy of the parameters, for
    the held-out evaluation each runs on its own share (unchanged for one process)."""
    from phoenix.training import distributed
    return distributed.host_copy(params)


def constrain(params: Any) -> Any:
    """Inside the jitted step: keep the updated parameters in their shardings (else XLA may
    choose to replicate the step's outputs)."""
    mesh = current()
    if mesh is None:
        return params
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: jax.lax.with_sharding_constraint(leaf, NamedSharding(mesh, param_spec(mesh, path, leaf))),
        params)
