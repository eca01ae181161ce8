"""Phoenix: the ranker and two-tower retriever (JAX/Flax), their features, runtime and I/O.

Public entry points: `phoenix.config` (sizes as data), `phoenix.features` (ids -> padded
arrays), `phoenix.runtime` (jitted serving/training helpers), `phoenix.losses`,
`phoenix.reference_io` (reference-layout checkpoints).
"""
