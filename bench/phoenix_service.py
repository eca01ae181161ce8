"""Phoenix through gRPC: Rank and Retrieve latency (p50/p99, one caller) and throughput
(concurrent callers, micro-batched) at several corpus sizes, exact vs ANN (usearch HNSW)
retrieval, and the ANN's recall@K against exact search.

    foryou bench phoenix_service [--sizes 10000,100000,1000000] [--preset demo]

The server runs in this process with no Kafka feed; its index is filled with synthetic unit
vectors of the retriever's dimension (128 for the demo preset): embedding 1M posts with the
candidate tower is a separate cost (shown as "embed posts/s"), and latency does not depend
on what the vectors are. Recommendation embeddings are clustered (posts on a topic sit near
each other), so corpus and recall queries are drawn around 256 random centroids; isotropic
random vectors are the degenerate worst case for any ANN graph (HNSW recall@100 ~0.4 there
at 50k), and say nothing about real corpora. Retrieve requests through gRPC use the real
user tower for the query. JAX runs with the Phoenix service's XLA flags.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from bench.common import percentiles_ms, print_table, use_phoenix_xla_flags  # noqa: E402

use_phoenix_xla_flags()

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from foryou import snowflake  # noqa: E402
from foryou_protos import common_pb2, phoenix_pb2, phoenix_pb2_grpc  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="foryou bench phoenix_service")
    p.add_argument("--sizes", default="10000,100000,1000000", help="corpus sizes, comma-separated")
    p.add_argument("--preset", default="demo", choices=("tiny", "demo", "serving"))
    p.add_argument("--requests", type=int, default=200, help="sequential requests per latency row")
    p.add_argument("--concurrency", type=int, default=32, help="callers for the throughput column")
    p.add_argument("--k", type=int, default=100, help="Retrieve k (recall is measured at this k)")
    p.add_argument("--candidates", type=int, default=256, help="candidates per Rank request")
    p.add_argument("--ann-max", type=int, default=10**7, help="skip the ANN rows above this corpus size "
                                                                 "(building HNSW over 1M takes minutes on 2 cores)")
    return p.parse_args(argv)


def history(rng, n: int = 32):
    return [phoenix_pb2.HistoryItem(post_id=int(rng.integers(1, 2**40)), author_id=int(rng.integers(1, 10_000)),
                                    actions=[common_pb2.FAVORITE]) for _ in range(n)]


def rank_request(rng, args, max_history: int) -> phoenix_pb2.RankRequest:
    return phoenix_pb2.RankRequest(
        user_id=int(rng.integers(1, 10**6)), history=history(rng, max_history),
        post_ids=rng.integers(1, 2**40, size=args.candidates).tolist(),
        author_ids=rng.integers(1, 10_000, size=args.candidates).tolist())


def retrieve_request(rng, args, max_history: int) -> phoenix_pb2.RetrieveRequest:
    return phoenix_pb2.RetrieveRequest(user_id=int(rng.integers(1, 10**6)), history=history(rng, max_history), k=args.k,
                                       exclude_author_ids=[int(a) for a in rng.integers(1, 10_000, size=30)])


NUM_CLUSTERS = 256
CLUSTER_NOISE = 0.08  # per-dimension std around a centroid: within-cluster cosine ~0.5


def clustered(rng, n: int, dim: int, centroids: np.ndarray) -> np.ndarray:
    v = centroids[rng.integers(0, len(centroids), size=n)] + rng.normal(0, CLUSTER_NOISE, (n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(index, size: int, dim: int, rng, centroids: np.ndarray) -> None:
    now = snowflake.now_ms()
    for lo in range(0, size, 100_000):
        n = min(100_000, size - lo)
        v = clustered(rng, n, dim, centroids)
        index.upsert([snowflake.make_id(now - (lo + i) // 100, lo + i) for i in range(n)],
                     rng.integers(1, 10_000, size=n).tolist(), v)


async def latency(call, make, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        request = make()
        start = time.perf_counter()
        await call(request)
        samples.append(time.perf_counter() - start)
    return percentiles_ms(samples)


async def throughput(call, make, n: int, concurrency: int) -> float:
    requests = [make() for _ in range(n)]
    queue: asyncio.Queue = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)

    async def worker():
        while not queue.empty():
            await call(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


def ann_recall(server, rng, args, centroids: np.ndarray, queries: int = 200) -> float:
    from phoenix.index import recall_at_k

    users = clustered(rng, queries, centroids.shape[1], centroids)
    return recall_at_k(server.index.search(users, args.k), server.index.search(users, args.k, exact=True))


def compile_batches(server, args, max_history: int) -> None:
    """Compile every micro-batch shape the throughput runs can form (powers of two)."""
    from phoenix.features import CandidateItem, HistoryItem

    hist = [HistoryItem(i + 1, 1, (0,)) for i in range(max_history)]
    cands = [CandidateItem(i + 1, 1) for i in range(args.candidates)]
    b = 1
    while b <= server.settings.max_batch:
        server.models.ranker.rank_many([(1, hist, cands)] * b)
        server.models.retriever.user_embeddings([1] * b, [hist] * b)
        b *= 2


async def bench_size(size: int, args, rng) -> list[list]:
    from phoenix.server import PhoenixServer, PhoenixSettings

    server = await PhoenixServer(PhoenixSettings(port=0, kafka_bootstrap="", preset=args.preset,
                                                 ann_threshold=10**12)).start()
    rows = []
    try:
        dim = server.models.retriever.embedding_dim
        centroids = rng.standard_normal((NUM_CLUSTERS, dim)).astype(np.float32) / np.sqrt(dim)
        fill(server.index, size, dim, rng, centroids)
        max_history = server.models.ranker.config.history_len
        compile_batches(server, args, max_history)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = phoenix_pb2_grpc.PhoenixServiceStub(channel)
            make_rank = lambda: rank_request(rng, args, max_history)  # noqa: E731
            make_retrieve = lambda: retrieve_request(rng, args, max_history)  # noqa: E731
            for _ in range(5):  # compile the shapes used below
                await stub.Rank(make_rank())
                await stub.Retrieve(make_retrieve())
            await asyncio.gather(*(stub.Rank(make_rank()) for _ in range(args.concurrency)))
            await asyncio.gather(*(stub.Retrieve(make_retrieve()) for _ in range(args.concurrency)))
            p50, p99 = await latency(stub.Rank, make_rank, args.requests)
            qps = await throughput(stub.Rank, make_rank, args.requests, args.concurrency)
            rows.append([size, f"Rank ({args.candidates} cand.)", "-", p50, p99, qps, "-", "-"])
            for backend in ("exact", "ann") if size <= args.ann_max else ("exact",):
                build_s = "-"
                recall = "1.000 (exact)"
                if backend == "ann":
                    start = time.perf_counter()
                    server.index.enable_ann()
                    build_s = f"{time.perf_counter() - start:.1f}"
                    recall = f"{ann_recall(server, rng, args, centroids):.3f}"
                p50, p99 = await latency(stub.Retrieve, make_retrieve, args.requests)
                qps = await throughput(stub.Retrieve, make_retrieve, args.requests, args.concurrency)
                rows.append([size, f"Retrieve k={args.k}", backend, p50, p99, qps, recall, build_s])
    finally:
        await server.stop()
    return rows


def embed_rate(preset: str) -> float:
    from phoenix.server_models import preset_configs
    from phoenix.runtime import RetrieverRuntime

    runtime = RetrieverRuntime.init(preset_configs(preset)[1])
    ids = np.arange(1, 20_001, dtype=np.uint64)
    runtime.candidate_embeddings(ids[:4096], ids[:4096])
    start = time.perf_counter()
    runtime.candidate_embeddings(ids, ids)
    return len(ids) / (time.perf_counter() - start)


def ingest_rate(preset: str, n: int = 20_000) -> dict[str, tuple[float, float]]:
    """Posts/s through the v2 ingestion path, as the corpus feeder runs it: content vectors from
    the text (wordllama), semantic ids with a 4 x 256 codebook, the candidate tower, the index.
    Texts are built like the synthetic world's (topic words in templates)."""
    from foryou.world import TOPIC_WORDS
    from phoenix.content import CONTENT_DIM, ContentStore, encode_texts
    from phoenix.index import CorpusIndex
    from phoenix.runtime import RetrieverRuntime
    from phoenix.server_models import preset_configs
    from phoenix.sid import fit_codebook

    rng = np.random.default_rng(0)
    topics = [rng.integers(len(TOPIC_WORDS)) for _ in range(n)]
    texts = [f"Quick thread on {' and '.join(rng.choice(TOPIC_WORDS[t][1], 3))} #{TOPIC_WORDS[t][0]} {i}"
             for i, t in enumerate(topics)]
    config = preset_configs(preset)[1]
    book = fit_codebook(encode_texts(texts[:5000]), config.inputs.sid_levels or 4, config.inputs.sid_codes)
    store = ContentStore()
    store.register(book)
    runtime = RetrieverRuntime(config, RetrieverRuntime.init(config).params, book, store)
    ids = np.arange(1, n + 1, dtype=np.uint64) + np.uint64(1 << 40)
    index = CorpusIndex(runtime.embedding_dim, initial_capacity=n)
    runtime.candidate_embeddings(ids[:4096], ids[:4096])  # compile
    book.assign(np.zeros((2000, CONTENT_DIM), np.float32))  # compile the semantic-id assignment
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    chunk = 2000  # the feeder's poll size
    for lo in range(0, n, chunk):
        part = ids[lo:lo + chunk]
        for stage, fn in (("content vectors + semantic ids", lambda: store.add_posts(part.tolist(), texts[lo:lo + chunk])),
                          ("candidate tower + index", lambda: index.upsert(
                              part.tolist(), part.tolist(), runtime.candidate_embeddings(part, part)))):
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[stage] = wall.get(stage, 0.0) + time.perf_counter() - w
            cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - c
    wall["all"], cpu["all"] = sum(wall.values()), sum(cpu.values())
    # posts/s of wall time, and per CPU-second (all threads): the latter does not depend on
    # what else the machine runs
    return {stage: (n / wall[stage], n / cpu[stage]) for stage in wall}


async def amain(args) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        rows.extend(await bench_size(size, args, rng))
        print(f"  done corpus {size:,}", flush=True)
    print_table(f"Phoenix through gRPC (preset {args.preset}, client in-process, {args.concurrency} callers for qps)",
                ["corpus", "call", "index", "p50 ms", "p99 ms", "qps", f"recall@{args.k}", "ANN build s"], rows)
    print(f"candidate tower: {embed_rate(args.preset):,.0f} posts/s embedded (preset {args.preset})")
    rates = ingest_rate(args.preset)
    print_table(f"Ingestion of new posts (preset {args.preset}, 20,000 posts in polls of 2,000; "
                f"1-min load avg {os.getloadavg()[0]:.1f})",
                ["stage", "posts/s (wall)", "posts per CPU-s"],
                [[name, f"{w:,.0f}", f"{c:,.0f}"] for name, (w, c) in rates.items()])


def main(argv: list[str]) -> int:
    asyncio.run(amain(parse(argv)))
    return 0
