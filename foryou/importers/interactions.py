"""Your own interaction logs (CSV, or Parquet when pyarrow is installed) as the four topics.

One row per action of a user on an item. Columns (names exact, any order; docs/data-import.md
has a worked example):

    user_id          required  positive integer: the user who acted (also the feed's user id)
    item_id          required  any non-empty string: the item (becomes a post with a minted id)
    author_id        required  positive integer: who published the item (one per item)
    action           required  an action name (favorite, reply, repost, click, share, dwell,
                               not_interested, block_author, ... : foryou.Action in lower case),
                               or `impression`: the item was shown and nothing was done
    timestamp        required  Unix seconds, Unix milliseconds (>= 1e11) or ISO 8601
    text             optional  the item's text (first non-empty value wins)
    item_created_at  optional  when the item was published (same formats; default: 1 s before
                               its first row); must not be after its first row
    dwell_ms         optional  non-negative integer, dwell time of the engagement

Rows of one user, item and timestamp are one engagement with all their actions. Every
engagement is also an impression (when no `impression` row of that user and item came at or
before it); impressions become served feed requests as in common.served_sessions.

The whole file is checked before anything is written: any bad row stops the import with an
error naming every bad row (up to 20) and its column, and nothing is written, unless
`skip_bad_rows`, where bad rows are left out and the import says how many and which."""
from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from foryou import snowflake
from foryou_protos import common_pb2
from foryou.importers.common import (DEFAULT_DAYS, ImportDataError, ImportedData, Impression, PostIds, Progress,
                                     TimeMap, post_event, profile_event, served_sessions)

REQUIRED = ("user_id", "item_id", "author_id", "action", "timestamp")
OPTIONAL = ("text", "item_created_at", "dwell_ms")
IMPRESSION = "impression"
ACTIONS = {name.lower(): value for name, value in common_pb2.Action.items() if value}
MAX_ERRORS_SHOWN = 20
_MAX_ID = 2 ** 63 - 1


@dataclass(frozen=True)
class Row:
    line: int           # CSV: the file's line number (the header is line 1); Parquet: 1-based row
    user_id: int
    item_id: str
    author_id: int
    action: int         # an Action value, or 0 for an impression
    time_ms: int
    text: str
    created_ms: int | None
    dwell_ms: int


class RowError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"column {column!r}: {message}")
        self.column = column


def parse_time_ms(value: object, column: str) -> int:
    """Unix seconds, Unix ms (values >= 1e11, i.e. after 1973 in ms) or ISO 8601 (naive = UTC)."""
    text = str(value).strip()
    if not text:
        raise RowError(column, "is empty")
    try:
        number = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise RowError(column, f"{text!r} is neither Unix seconds/ms nor an ISO 8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return int(parsed.timestamp() * 1000)
    if not math.isfinite(number) or number < 0:
        raise RowError(column, f"{text!r} is not a non-negative time")
    return int(number) if number >= 1e11 else int(number * 1000)


def _positive_int(value, column: str) -> int:
    text = str(value).strip()
    try:
        out = int(text)
    except ValueError:
        raise RowError(column, f"{text!r} is not an integer") from None
    if not 0 < out <= _MAX_ID:
        raise RowError(column, f"{text!r} must be a positive 63-bit integer")
    return out


def parse_row(line: int, record: dict) -> Row:
    item = str(record.get("item_id") or "").strip()
    if not item:
        raise RowError("item_id", "is empty")
    if len(item) > 200:
        raise RowError("item_id", "is longer than 200 characters")
    action_text = str(record.get("action") or "").strip().lower()
    if action_text == IMPRESSION:
        action = 0
    elif action_text in ACTIONS:
        action = ACTIONS[action_text]
    else:
        raise RowError("action", f"{action_text!r} is not `impression` or one of {', '.join(ACTIONS)}")
    created = record.get("item_created_at")
    dwell_text = str(record.get("dwell_ms") or "").strip()
    dwell = 0
    if dwell_text:
        try:
            dwell = int(float(dwell_text))
        except ValueError:
            raise RowError("dwell_ms", f"{dwell_text!r} is not a number") from None
        if dwell < 0:
            raise RowError("dwell_ms", f"{dwell_text!r} is negative")
    return Row(line, _positive_int(record.get("user_id"), "user_id"), item,
               _positive_int(record.get("author_id"), "author_id"), action,
               parse_time_ms(record.get("timestamp") or "", "timestamp"), str(record.get("text") or "").strip(),
               parse_time_ms(created, "item_created_at") if str(created or "").strip() else None, dwell)


def _check_columns(path: Path, columns: list[str]) -> list[str]:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ImportDataError(f"{path}: missing required column(s) {', '.join(missing)} "
                              f"(found: {', '.join(columns) or 'none'}); see docs/data-import.md")
    return [c for c in columns if c not in REQUIRED + OPTIONAL]


def _csv_records(path: Path) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    fh = open(path, newline="", encoding="utf-8")
    reader = csv.DictReader(fh)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns

    def rows():
        try:
            for record in reader:
                if None in record:  # more fields than the header
                    yield reader.line_num, {"__extra__": record[None]}
                    continue
                yield reader.line_num, record
        finally:
            fh.close()
    return columns, rows()


def _parquet_records(path: Path) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise ImportDataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or give a CSV") from None
    pf = pq.ParquetFile(path)
    columns = list(pf.schema_arrow.names)

    def rows():
        n = 0
        for batch in pf.iter_batches(batch_size=65_536):
            for record in batch.to_pylist():
                n += 1
                yield n, {k: ("" if v is None else v) for k, v in record.items()}
    return columns, rows()


def read_rows(path: str | Path, skip_bad_rows: bool = False, progress: Progress | None = None
              ) -> tuple[list[Row], list[str], list[str]]:
    """(valid rows, error lines, notes). Raises ImportDataError naming the bad rows unless
    `skip_bad_rows`."""
    path = Path(path)
    if not path.exists():
        raise ImportDataError(f"{path}: no such file")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    columns, records = (_parquet_records if parquet else _csv_records)(path)
    ignored = _check_columns(path, columns)
    notes = [f"ignored unknown column(s): {', '.join(ignored)}"] if ignored else []
    rows: list[Row] = []
    errors: list[str] = []
    bad = 0
    where = "row" if parquet else "line"
    for n, (line, record) in enumerate(records, start=1):
        if "__extra__" in record:
            error = f"{path}: {where} {line}: more fields than the header's {len(columns)} columns"
        else:
            try:
                rows.append(parse_row(line, record))
                error = None
            except RowError as exc:
                error = f"{path}: {where} {line}, {exc}"
        if error:
            bad += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append(error)
        if progress:
            progress(n)
    if progress:
        progress(len(rows) + bad, final=True)
    inconsistent = _consistency_errors(path, where, rows, skip_bad_rows)
    bad += len(inconsistent)
    errors = (errors + inconsistent)[:MAX_ERRORS_SHOWN]
    if errors and not skip_bad_rows:
        more = f"\n  ... and {bad - len(errors)} more" if bad > len(errors) else ""
        raise ImportDataError(f"{bad} bad row(s); nothing was imported:\n  " + "\n  ".join(errors) + more)
    if bad:
        notes.append(f"skipped {bad} bad row(s) (--skip-bad-rows): " + "; ".join(errors[:3]))
    return rows, errors, notes


def _consistency_errors(path: Path, where: str, rows: list[Row], drop: bool) -> list[str]:
    """One author per item, and no item created after its first row: an error per offending
    row. With `drop`, those rows are removed from `rows` in place."""
    author: dict[str, int] = {}
    first: dict[str, int] = {}
    for r in rows:
        author.setdefault(r.item_id, r.author_id)
        first[r.item_id] = min(first.get(r.item_id, r.time_ms), r.time_ms)
    errors, keep = [], []
    for r in rows:
        if r.author_id != author[r.item_id]:
            errors.append(f"{path}: {where} {r.line}, column 'author_id': item {r.item_id!r} already has author "
                          f"{author[r.item_id]}, not {r.author_id}")
        elif r.created_ms is not None and r.created_ms > first[r.item_id]:
            errors.append(f"{path}: {where} {r.line}, column 'item_created_at': after the item's first row")
        else:
            keep.append(r)
    if drop:
        rows[:] = keep
    return errors


def convert(rows: list[Row], days: float = DEFAULT_DAYS, now_ms: int | None = None, keep_times: bool = False,
            source: str = "interactions") -> ImportedData:
    if not rows:
        raise ImportDataError("nothing to import: no valid rows")
    if keep_times and min(r.time_ms for r in rows) - 1000 < snowflake.TWITTER_EPOCH_MS:
        raise ImportDataError("--keep-times needs every time after 2010-11-04 (snowflake ids); drop it to fit "
                              "the log into the last --days")
    created: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: (r.time_ms, r.line)):
        if r.item_id not in created:
            created[r.item_id] = r.time_ms - 1000
        if r.created_ms is not None:
            created[r.item_id] = min(created[r.item_id], r.created_ms)
    tmap = TimeMap.fit([r.time_ms for r in rows] + list(created.values()), days, now_ms, keep_times)
    data = ImportedData(source=source)
    profile_at = tmap(tmap.src_min) - 1000
    accounts = sorted({r.user_id for r in rows} | {r.author_id for r in rows})
    data.user_events = [profile_event(a, profile_at, f"user{a}", f"user {a}") for a in accounts]

    author = {r.item_id: r.author_id for r in rows}
    text: dict[str, str] = {}
    for r in rows:
        if r.text and r.item_id not in text:
            text[r.item_id] = r.text
    ids = PostIds()
    for item in sorted(created, key=lambda i: (created[i], i)):
        data.item_posts[item] = ids.mint(tmap(created[item]))
        data.post_events.append(post_event(data.item_posts[item], author[item], text.get(item, f"item {item}")))

    groups: dict[tuple[int, str, int], list[Row]] = {}
    shown: dict[tuple[int, str], int] = {}
    for r in rows:
        if r.action == 0:
            shown[(r.user_id, r.item_id)] = min(shown.get((r.user_id, r.item_id), r.time_ms), r.time_ms)
        else:
            groups.setdefault((r.user_id, r.item_id, r.time_ms), []).append(r)
    impressions = [Impression(u, data.item_posts[i], t, tmap(t)) for (u, i), t in shown.items()]
    for (user, item, t), group in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        post = data.item_posts[item]
        if shown.get((user, item), t + 1) > t:  # not shown at or before: the engagement is an impression too
            impressions.append(Impression(user, post, t, tmap(t)))
        data.engagements.append(common_pb2.Engagement(
            user_id=user, post_id=post, post_author_id=author[item],
            # protobuf's stubs type enum fields as the enum class; the plain int values are accepted
            actions=sorted({r.action for r in group}), surface=common_pb2.HOME_FOR_YOU,  # type: ignore[misc]
            dwell_time_ms=max(r.dwell_ms for r in group), timestamp_ms=tmap(t)))
    data.served = served_sessions(impressions, source)
    data.notes.append(tmap.describe())
    return data


def load(path: str | Path, days: float = DEFAULT_DAYS, now_ms: int | None = None, keep_times: bool = False,
         skip_bad_rows: bool = False, progress: Progress | None = None) -> ImportedData:
    rows, _, notes = read_rows(path, skip_bad_rows, progress)
    data = convert(rows, days, now_ms, keep_times, source=f"interactions:{Path(path).name.replace(' ', '_')}")
    data.notes = notes + data.notes
    return data
