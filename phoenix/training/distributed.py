"""Multi-process training (docs/scaling.md): `foryou train ... --coordinator HOST:PORT
--num-processes P --process-id I`.

`jax.distributed` joins the P processes into one JAX runtime: `jax.devices()` lists every
process's devices, the training mesh (mesh.py) spans them all and every process runs the same
jitted step on its own devices, XLA's collectives crossing processes (gloo on CPU, NCCL on
GPU). Each process keeps its own share of the users' events (`share`) and contributes its rows
of every global minibatch (mesh.place_batch); all of them write the one checkpoint together
(orbax: each process its own shards, process 0 the rest; phoenix/checkpoints.py).
A single process is the trivial case: every function here is then a no-op.
"""
from __future__ import annotations

import uuid

import jax
import numpy as np

_MASK64 = (1 << 64) - 1


def initialize(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join the job; before any other JAX call (the backends are created on first use)."""
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must be in [0, {num_processes}), got {process_id}")
    # Collectives between CPU processes go through gloo (the CPU client has none of its own);
    # GPU devices use NCCL whatever this says, so the same command runs on either.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)


def multi_process() -> bool:
    return jax.process_count() > 1


def is_primary() -> bool:
    return jax.process_index() == 0


def owner(user_id: int, count: int) -> int:
    """The process that trains on this user's events: a multiplicative hash, so ids that
    share low bits (snowflakes, strided imports) still spread evenly."""
    return (((int(user_id) * 0x9E3779B97F4A7C15) & _MASK64) >> 32) % count


def owners(user_ids: np.ndarray, count: int) -> np.ndarray:
    """`owner` of every id of an array (uint64 products wrap, as the mask does)."""
    product = np.asarray(user_ids, np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return ((product >> np.uint64(32)) % np.uint64(count)).astype(np.int64)


def share(log, index: int | None = None, count: int | None = None):
    """This process's share of an EventLog (phoenix/training/data.py): the engagements and
    served events of the users it owns, so each user's history stays whole on one process;
    the posts (authors, text, deletions: what features and the codebook need) stay whole on
    every process. The whole log when there is one process."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    if count == 1:
        return log
    return log.of_users(lambda user_ids: owners(user_ids, count) == index)


def barrier(name: str) -> None:
    """Wait until every process got here (a no-op for one process)."""
    if multi_process():
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def agreed_token() -> str:
    """A random name that every process gets the same (process 0's): for a directory they
    all write into."""
    token = np.int32(uuid.uuid4().int & 0x7FFFFFFF)  # int32: JAX's default integer width
    if multi_process():
        from jax.experimental import multihost_utils
        token = multihost_utils.broadcast_one_to_all(token)
    return f"{int(token):08x}"


def agreed_min(value: int) -> int:
    """The smallest of the processes' values (e.g. how many validation minibatches each can
    fill: every process must run the same number of steps)."""
    if not multi_process():
        return value
    from jax.experimental import multihost_utils
    return int(np.min(multihost_utils.process_allgather(np.int32(value))))


def host_copy(tree):
    """Every process's full copy (numpy) of the arrays that span several processes; the
    others are left as they are."""
    if not multi_process():
        return tree
    from jax.experimental import multihost_utils

    def copy(leaf):
        spans = isinstance(leaf, jax.Array) and not leaf.is_fully_addressable
        return multihost_utils.process_allgather(leaf, tiled=True) if spans else leaf
    return jax.tree.map(copy, tree)
