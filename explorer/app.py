"""The explorer's Starlette app: server-rendered pages (Jinja2) over async gRPC calls.

Pages: / (pick a user), /feed/{user}, /tune/{user}, /pipeline/{user}, /user/{user}, /model.
{user} is an id or a handle. Errors render as pages: unknown user (404), a service down (503,
naming it), a bad parameter (400, HomeMixer's message next to the field)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from explorer import views
from explorer.backends import Addresses, Backends, InvalidArgument, ServiceDown
from explorer.world_info import WorldSource
from foryou_protos import home_mixer_pb2

HERE = Path(__file__).parent
RECENT_ENGAGEMENTS = 30


@dataclass
class ExplorerConfig:
    addresses: Addresses
    world_file: Path | None = None     # the seeded world's config (foryou seed writes it)
    eval_dir: Path | None = None       # a `foryou eval --out` directory
    timeout_s: float = 10.0
    feed_timeout_s: float = 30.0


class UnknownUser(LookupError):
    def __init__(self, who: str, reason: str) -> None:
        super().__init__(f"unknown user {who}: {reason}")
        self.who, self.reason = who, reason


@dataclass
class User:
    user_id: int
    handle: str
    display_name: str
    follower_count: int


class Explorer:
    """What the handlers share: the clients, the world file, known handles."""

    def __init__(self, config: ExplorerConfig) -> None:
        self.config = config
        self.backends = Backends(config.addresses, config.timeout_s, config.feed_timeout_s)
        self.world = WorldSource(config.world_file)
        self.handles: dict[str, int] = {}   # seen in Thunder answers, for handle search without a world

    def remember(self, authors) -> dict[int, str]:
        out = {}
        for author in authors:
            if author.handle:
                self.handles[author.handle.lower()] = author.user_id
                out[author.user_id] = author.handle
        return out

    async def user_id_of(self, who: str) -> int:
        text = who.strip().lstrip("@")
        if text.isdigit() and int(text) > 0:
            return int(text)
        world = await self.world.get()
        found = (world.handles.get(text.lower()) if world else None) or self.handles.get(text.lower())
        if found is None:
            raise UnknownUser(who, "no user has this handle (handles come from the world file and from "
                                   "users seen so far) and it is not a positive id")
        return found

    async def user(self, user_id: int) -> User:
        """The user's profile from Thunder; UnknownUser when Thunder knows nothing of them."""
        authors = await self.backends.authors([user_id])
        author = authors.get(user_id)
        if author is None:
            context = await self.backends.user_context(user_id, max_engagements=1)
            if not (context.following_user_ids or context.engagements):
                raise UnknownUser(str(user_id), "Thunder has no profile, follows or engagements for this id")
            return User(user_id, str(user_id), "", 0)
        self.remember([author])
        return User(user_id, author.handle or str(user_id), author.display_name, author.follower_count)


T = TypeVar("T")


def _or_raise(result: T | BaseException) -> T:
    """One result of `asyncio.gather(..., return_exceptions=True)`: the failure raised here."""
    if isinstance(result, BaseException):
        raise result
    return result


async def _nothing() -> None:
    """The call a page skips, in a `gather`."""
    return None


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["num"] = lambda v, digits=4: f"{v:.{digits}g}" if isinstance(v, (int, float)) else v
    templates.env.filters["pct"] = lambda v: f"{100 * v:.0f}%"
    templates.env.filters["ms_time"] = lambda ms: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))
    return templates


class _Pages:
    """The explorer's pages and error pages, over one Explorer."""

    def __init__(self, config: ExplorerConfig) -> None:
        self.config = config
        self.explorer = Explorer(config)
        self.templates = _templates()

    def page(self, request: Request, name: str, status_code: int = 200, **context) -> Response:
        context.setdefault("addresses", self.config.addresses)
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    async def resolved(self, request: Request, route: str) -> tuple[int, Response | None]:
        """The path's user id; a redirect to the id URL when a handle was given."""
        who = request.path_params["who"]
        user_id = await self.explorer.user_id_of(who)
        if str(user_id) != who:
            query = f"?{request.url.query}" if request.url.query else ""
            return user_id, RedirectResponse(f"/{route}/{user_id}{query}", status_code=303)
        return user_id, None

    def tuning_of(self, request: Request) -> views.Tuning:
        return views.parse_tuning(request.query_params, request.query_params.getlist("off"))

    async def home(self, request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        if q:
            user_id = await self.explorer.user_id_of(q)
            return RedirectResponse(f"/feed/{user_id}", status_code=303)
        world = await self.explorer.world.get()
        users = world.world.users[:60] if world else []
        return self.page(request, "home.html", users=users, world=world)

    async def feed(self, request: Request) -> Response:
        user_id, redirect = await self.resolved(request, "feed")
        if redirect:
            return redirect
        tuning = self.tuning_of(request)
        query = views.build_query(user_id, tuning if not tuning.errors else None)
        user, response, world = await asyncio.gather(self.explorer.user(user_id), self.explorer.backends.feed(query),
                                                     self.explorer.world.get())
        cards = views.cards_from(response, views.weights_of(query.params), world.topic_of if world else None)
        return self.page(request, "feed.html", user=user, cards=cards, response=response, tuning=tuning, tab="feed")

    async def tune(self, request: Request) -> Response:
        user_id, redirect = await self.resolved(request, "tune")
        if redirect:
            return redirect
        tuning = self.tuning_of(request)
        baseline_query = views.build_query(user_id, debug=True)
        tuned_query = views.build_query(user_id, tuning)
        wants_tuned = tuning.active and not tuning.errors
        results = await asyncio.gather(
            self.explorer.user(user_id), self.explorer.backends.feed(baseline_query), self.explorer.world.get(),
            self.explorer.backends.feed(tuned_query) if wants_tuned else _nothing(), return_exceptions=True)
        user = _or_raise(results[0])  # raised in this order, as the page reads them
        baseline: home_mixer_pb2.ScoredPostsResponse = _or_raise(results[1])
        world = _or_raise(results[2])
        tuned = results[3] if results[3] is not None else baseline
        status = 400 if tuning.errors else 200
        if isinstance(tuned, InvalidArgument):
            tuning.errors[views.field_of_error(tuned.message) or "_request"] = tuned.message
            tuned, status = baseline, 400
        elif isinstance(tuned, BaseException):
            raise tuned
        topic_of = world.topic_of if world else None
        before = views.cards_from(baseline, views.DEFAULT_WEIGHTS, topic_of)
        cards = views.cards_from(tuned, views.weights_of(tuning.overrides), topic_of) if tuned is not baseline else before
        left = views.apply_moves(before, cards) if tuned is not baseline else []
        body, command = views.reproduce(tuned_query, self.config.addresses.home_mixer)
        components = views.component_names(baseline.debug.timings)
        return self.page(request, "tune.html", status_code=status, user=user, cards=cards, left=left, response=tuned,
                         tuning=tuning, tunables=views.SCALAR_TUNABLES, weights=views.WEIGHT_TUNABLES,
                         components=components, body=body, command=command, tab="tune")

    async def pipeline(self, request: Request) -> Response:
        user_id, redirect = await self.resolved(request, "pipeline")
        if redirect:
            return redirect
        tuning = self.tuning_of(request)
        query = views.build_query(user_id, tuning if not tuning.errors else None, debug=True)
        user, response = await asyncio.gather(self.explorer.user(user_id), self.explorer.backends.feed(query))
        removed_ids = [r.post_id for r in response.debug.removed]
        posts = await self.explorer.backends.posts(removed_ids) if removed_ids else {}
        authors = await self.explorer.backends.authors([p.author_id for p in posts.values()]) if posts else {}
        groups = views.group_removed(response.debug.removed, posts, self.explorer.remember(authors.values()))
        bars, total = views.timing_bars(response.debug.timings)
        return self.page(request, "pipeline.html", user=user, response=response, groups=groups, bars=bars,
                         total=total, tuning=tuning, tab="pipeline")

    async def user_page(self, request: Request) -> Response:
        user_id, redirect = await self.resolved(request, "user")
        if redirect:
            return redirect
        user, context, response, world = await asyncio.gather(
            self.explorer.user(user_id), self.explorer.backends.user_context(user_id),
            self.explorer.backends.feed(views.build_query(user_id)), self.explorer.world.get())
        recent = list(context.engagements)[::-1][:RECENT_ENGAGEMENTS]
        posts = await self.explorer.backends.posts([e.post_id for e in recent]) if recent else {}
        people = [*context.following_user_ids, *(e.post_author_id for e in recent)]
        handles = self.explorer.remember((await self.explorer.backends.authors(people)).values()) if people else {}
        topics = None
        if world is not None and world.has_user(user_id) and world.handle(user_id) == user.handle:
            topics = world.topic_rows(user_id, [p.post_id for p in response.scored_posts])
        return self.page(request, "user.html", user=user, context=context, recent=recent, posts=posts, handles=handles,
                         topics=topics, world=world, feed_size=len(response.scored_posts), tab="user",
                         action_names=_action_names())

    async def model(self, request: Request) -> Response:
        info = await self.explorer.backends.model_info()
        eval_dir = self.config.eval_dir
        eval_md = eval_png = None
        if eval_dir is not None:
            with contextlib.suppress(OSError):
                eval_md = (eval_dir / "eval.md").read_text()
            eval_png = (eval_dir / "eval.png").is_file()
        configs = {name: _pretty_json(text) for name, text in
                   (("ranker", info.ranker_config_json), ("retriever", info.retriever_config_json))}
        return self.page(request, "model.html", info=info, configs=configs, eval_dir=eval_dir, eval_md=eval_md,
                         eval_png=eval_png, tab="model")

    async def eval_png(self, request: Request) -> Response:
        path = self.config.eval_dir / "eval.png" if self.config.eval_dir else None
        if path is None or not path.is_file():
            raise HTTPException(404, "no eval.png (start `foryou ui` with --eval-dir)")
        return FileResponse(path, media_type="image/png")

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    # ---- error pages

    async def unknown_user(self, request: Request, exc: UnknownUser) -> Response:
        return self.page(request, "error.html", status_code=404, title="Unknown user",
                         message=f"No user {exc.who!r}.", detail=exc.reason)

    async def service_down(self, request: Request, exc: ServiceDown) -> Response:
        return self.page(request, "error.html", status_code=503, title=f"{exc.service} is down",
                         message=f"{exc.service} at {exc.address} did not answer ({exc.code}).", detail=exc.details,
                         service=exc.service)

    async def invalid(self, request: Request, exc: InvalidArgument) -> Response:
        return self.page(request, "error.html", status_code=400, title="Bad request",
                         message=f"{exc.service.replace('_', '-')} rejected the request.", detail=exc.message)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return self.page(request, "error.html", status_code=exc.status_code, title=f"Error {exc.status_code}",
                         message=exc.detail, detail="")


def create_app(config: ExplorerConfig) -> Starlette:
    pages = _Pages(config)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await pages.explorer.backends.close()

    routes = [
        Route("/", pages.home), Route("/feed/{who}", pages.feed), Route("/tune/{who}", pages.tune),
        Route("/pipeline/{who}", pages.pipeline), Route("/user/{who}", pages.user_page), Route("/model", pages.model),
        Route("/model/eval.png", pages.eval_png), Route("/healthz", pages.healthz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    # Each handler takes its own exception type, which Starlette's handler type cannot express.
    handlers: dict[Any, Callable[..., Any]] = {
        UnknownUser: pages.unknown_user, ServiceDown: pages.service_down, InvalidArgument: pages.invalid,
        HTTPException: pages.http_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.explorer = pages.explorer
    return app


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True)
    except ValueError:
        return text


def _action_names() -> dict[int, str]:
    from foryou_protos import common_pb2
    return {value: name.lower() for name, value in common_pb2.Action.items()}
