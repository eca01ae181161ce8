"""The Phoenix model server: Rank, Retrieve and ModelInfo over grpc.aio.

Thin over the parts that do the work: request validation (server_validation), micro-batching
(server_batching), the models and their hot reload (server_models), the corpus index
(index) and its Kafka feeder (server_corpus). Health is NOT_SERVING until the corpus has
caught up with the `posts` topic and every candidate bucket is compiled (the two overlap);
meanwhile Rank and Retrieve answer UNAVAILABLE, never from a partial corpus or a cold model.

The served state is one immutable pair (models, index), swapped as a whole on reload, so a
batch never mixes a new retriever with an index embedded by the old one.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

import grpc
import numpy as np

from foryou import snowflake
from foryou.grpc_server import ServiceServer
from foryou.logs import request_id_var
from foryou.packed import field_number, float16_bytes, packed
from foryou_protos import phoenix_pb2, phoenix_pb2_grpc
from phoenix.actions import ACTION_NAMES
from phoenix.content import ContentStore
from phoenix.features import CandidateItem
from phoenix.index import CorpusIndex, Exclusions, ScoredPost
from phoenix.rerank import engaged_authors
from phoenix.server_batching import MicroBatcher
from phoenix.server_corpus import CorpusFeeder, reembed
from phoenix.server_models import Models, load_models, newer_models
from phoenix.runtime import RANK_ALONE_CANDIDATES, Ranked
from phoenix.server_validation import (Limits, RankInput, RetrieveInput, ValidationError, rank_input,
                                       retrieve_input)
from phoenix.settings import PhoenixSettings

log = logging.getLogger(__name__)

SERVICE_NAME = "foryou.PhoenixService"
Request = TypeVar("Request", phoenix_pb2.RankRequest, phoenix_pb2.RetrieveRequest)
Input = TypeVar("Input", RankInput, RetrieveInput)
_PREDICTIONS_FIELD = field_number(phoenix_pb2.RankResponse, "predictions")


class PhoenixServer:
    def __init__(self, settings: PhoenixSettings) -> None:
        self.settings = settings
        self._serving: tuple[Models, CorpusIndex] | None = None
        self.grpc = ServiceServer.of("phoenix", [SERVICE_NAME], settings)
        phoenix_pb2_grpc.add_PhoenixServiceServicer_to_server(PhoenixServicer(self), self.grpc.server)
        self.rank_batcher = MicroBatcher("rank", self._rank_batch, settings.max_batch, settings.max_wait_ms,
                                         size=_candidate_count, max_size=RANK_ALONE_CANDIDATES,
                                         workers=settings.rank_workers)
        self.retrieve_batcher = MicroBatcher("retrieve", self._retrieve_batch, settings.max_batch,
                                             settings.max_wait_ms)
        self.feeder: CorpusFeeder | None = None
        self._tasks: list[asyncio.Task] = []
        self._corpus_lock = asyncio.Lock()
        self.ready = False  # Rank and Retrieve are refused until SERVING
        # Post content vectors (from the posts topic), shared by both models and their reloads.
        self.content = ContentStore()

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self.grpc.address

    @property
    def state(self) -> tuple[Models, CorpusIndex]:
        """The (models, index) pair being served, read at once so the two always match."""
        if self._serving is None:
            raise RuntimeError("the Phoenix server is not started")
        return self._serving

    @property
    def models(self) -> Models:
        return self.state[0]

    @property
    def index(self) -> CorpusIndex:
        return self.state[1]

    async def start(self) -> "PhoenixServer":
        s = self.settings
        loop = asyncio.get_running_loop()
        models = await loop.run_in_executor(None, load_models, s.preset, s.checkpoint_dir, s.seed)
        self._attach(models)
        self._serving = (models, self._new_index(models))
        await self.grpc.start()
        if s.kafka_bootstrap:  # the replay runs while the model compiles
            self.feeder = CorpusFeeder(s.kafka_bootstrap, self._feed_target,
                                       max_age_ms=int(s.max_age_hours * 3600 * 1000), lock=self._corpus_lock,
                                       content=self.content, install=self._install_index)
            await self.feeder.start()
        await loop.run_in_executor(None, self._warmup, models, s.warm_every_bucket)
        if self.feeder is not None:
            self._tasks.append(asyncio.create_task(self._serve_when_caught_up()))
        else:
            await self._set_serving()
        if s.checkpoint_dir:
            self._tasks.append(asyncio.create_task(self._reload_loop()))
        return self

    async def _set_serving(self) -> None:
        self.ready = True
        await self.grpc.set_serving()

    async def stop(self) -> None:
        self.ready = False
        await self.grpc.set_not_serving()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.feeder is not None:
            await self.feeder.stop()
        await self.grpc.stop()
        await self.rank_batcher.close()
        await self.retrieve_batcher.close()

    def _attach(self, models: Models) -> None:
        """Point the models at the server's content store (a new codebook gets its codes assigned
        to every stored post here, before the models serve)."""
        models.ranker.use_store(self.content)
        models.retriever.use_store(self.content)

    def _new_index(self, models: Models) -> CorpusIndex:
        return CorpusIndex(models.retriever.embedding_dim, ann_threshold=self.settings.ann_threshold)

    @staticmethod
    def _warmup(models: Models, every_bucket: bool = False) -> None:
        """Compile before reporting SERVING: every candidate bucket (the default at start, and
        always on a reload, while the old models keep serving), or only the smallest shape. A
        shape first compiled under traffic costs seconds and misses every deadline."""
        if every_bucket:
            models.ranker.warmup()
        else:
            models.ranker.rank_many([(1, (), (CandidateItem(1, 1),))])
        models.retriever.user_embeddings([1], [[]])
        models.retriever.candidate_embeddings(np.ones(1, np.uint64), np.ones(1, np.uint64))

    def _install_index(self, index: CorpusIndex) -> None:
        """A corpus rebuilt after a log reset goes into service (the feeder holds the corpus lock)."""
        self._serving = (self.state[0], index)

    def _feed_target(self):
        models, index = self.state
        return index, models.retriever.candidate_embeddings

    async def _serve_when_caught_up(self) -> None:
        assert self.feeder is not None  # started with the feeder
        await self.feeder.caught_up.wait()
        await self._set_serving()

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_every_s)
            try:
                await self.reload()
            except Exception:  # a bad checkpoint must not take the server down
                log.exception("checkpoint reload failed; keeping %s", self.models.checkpoint_id)

    async def reload(self) -> bool:
        """Load newer checkpoints if the directory has any. Returns whether anything changed."""
        checkpoint_dir = self.settings.checkpoint_dir
        if checkpoint_dir is None:  # no checkpoint directory: nothing to reload
            return False
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, newer_models, self.models, checkpoint_dir)
        if found is None:
            return False
        models, retriever_changed = found
        await loop.run_in_executor(None, self._attach, models)
        await loop.run_in_executor(None, self._warmup, models, True)
        if retriever_changed:
            async with self._corpus_lock:  # no feeder writes into the old index meanwhile
                index = await reembed(self.index, models.retriever.candidate_embeddings,
                                      models.retriever.embedding_dim, self.settings.ann_threshold)
                index.copy_tombstones_from(self.index)
                if self.feeder is not None and self.feeder.rebuilding is not None:  # a rebuild in progress
                    rebuilt = await reembed(self.feeder.rebuilding, models.retriever.candidate_embeddings,
                                            models.retriever.embedding_dim, self.settings.ann_threshold)
                    rebuilt.copy_tombstones_from(self.feeder.rebuilding)
                    self.feeder.rebuilding = rebuilt
                self._serving = (models, index)
        else:
            self._serving = (models, self.index)
        log.info("reloaded models: %s (corpus %d)", models.checkpoint_id, len(self.index))
        return True

    # ---- the work, batched (runs in an executor thread) ------------------------------------

    def limits(self) -> Limits:
        ranker = self.models.ranker.config
        return Limits(max_history=ranker.history_len, max_candidates=self.settings.max_candidates,
                      max_k=self.settings.max_k, surface_vocab=ranker.product_surface_vocab_size,
                      max_exclude_post_ids=self.settings.max_exclude_post_ids,
                      max_exclude_author_ids=self.settings.max_exclude_author_ids)

    def _rank_batch(self, inputs: list[RankInput]) -> list[tuple[Ranked, str]]:
        models = self.models
        # Post ages are taken at the time of the request (one clock reading per batch).
        outputs = models.ranker.rank_many_ranked([(i.user_id, i.history, i.candidates) for i in inputs],
                                                 now_ms=snowflake.now_ms())
        return [(out, models.checkpoint_id) for out in outputs]

    def _retrieve_batch(self, inputs: list[RetrieveInput]) -> list[tuple[list[ScoredPost], int, str]]:
        models, index = self.state
        users = models.retriever.user_embeddings([i.user_id for i in inputs], [i.history for i in inputs])
        # Post ages are taken at the time of the request (one clock reading per batch).
        history_len = models.retriever.config.history_len  # the affinity counts what the model reads
        found = index.search(users, max(i.k for i in inputs),
                             [Exclusions(i.exclude_post_ids, i.exclude_author_ids) for i in inputs],
                             scoring=models.scoring, now_ms=snowflake.now_ms(),
                             engaged=[engaged_authors(i.history, history_len) for i in inputs])
        return [(posts[:i.k], len(index), models.checkpoint_id) for posts, i in zip(found, inputs)]


def _candidate_count(item: RankInput) -> int:
    return len(item.candidates)


def rank_response(ranked: Ranked, checkpoint_id: str) -> phoenix_pb2.RankResponse:
    """Predictions as a packed float array written from the array's bytes (foryou/packed.py);
    for a model with content input, each candidate's content vector as the model read it (from
    its batch) as float16 bytes: the content store's own precision, so nothing is lost, and half
    the bytes of float32 (most of a 1,000-candidate reply)."""
    values = ranked.predictions
    response = phoenix_pb2.RankResponse(checkpoint_id=checkpoint_id, num_outputs=values.shape[1])
    response.MergeFromString(packed(_PREDICTIONS_FIELD, np.asarray(values, np.float32)))
    if ranked.content is not None:
        response.content_dim = ranked.content.shape[1]
        response.content_f16 = float16_bytes(ranked.content)
    return response


class PhoenixServicer(phoenix_pb2_grpc.PhoenixServiceServicer):
    def __init__(self, server: PhoenixServer) -> None:
        self._server = server

    async def _refuse_unless_ready(self, context: grpc.aio.ServicerContext) -> None:
        if not self._server.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "Phoenix is not serving yet (corpus catching up or model compiling)")

    async def _input(self, request: Request, context: grpc.aio.ServicerContext,
                     parse: Callable[[Request, Limits], Input]) -> Input:
        """The request's validated input; UNAVAILABLE until serving, INVALID_ARGUMENT naming the
        bad field."""
        request_id_var.set(request.request_id)
        await self._refuse_unless_ready(context)
        try:
            return parse(request, self._server.limits())
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # abort raises; for the type checker

    async def Rank(self, request: phoenix_pb2.RankRequest, context: grpc.aio.ServicerContext):
        item = await self._input(request, context, rank_input)
        if not item.candidates:
            return phoenix_pb2.RankResponse(checkpoint_id=self._server.models.checkpoint_id)
        ranked, checkpoint_id = await self._server.rank_batcher.submit(item)
        return rank_response(ranked, checkpoint_id)

    async def Retrieve(self, request: phoenix_pb2.RetrieveRequest, context: grpc.aio.ServicerContext):
        item = await self._input(request, context, retrieve_input)
        posts, corpus_size, checkpoint_id = await self._server.retrieve_batcher.submit(item)
        return phoenix_pb2.RetrieveResponse(
            posts=[phoenix_pb2.RetrievedPost(post_id=p.post_id, author_id=p.author_id, score=p.score) for p in posts],
            corpus_size=corpus_size, checkpoint_id=checkpoint_id,
        )

    async def ModelInfo(self, request: phoenix_pb2.ModelInfoRequest, context: grpc.aio.ServicerContext):
        models, index = self._server.state
        return phoenix_pb2.ModelInfoResponse(
            ranker_config_json=models.ranker.config.to_json(),
            retriever_config_json=models.retriever.config.to_json(),
            checkpoint_id=models.checkpoint_id,
            corpus_size=len(index),
            action_names=list(ACTION_NAMES),
            max_history=models.ranker.config.history_len,
            max_candidates=self._server.settings.max_candidates,
        )
