"""Thunder: in-memory stores of recent posts and user state, fed by Kafka, served over gRPC.

- settings.py    every default (retention, per-author caps, request limits) in one place
- post_store.py  the store's truth: admission, deletes, labels and expiry of posts, by id and
                 in per-author Timelines
- records.py     StoredPost, Timeline, and a reply's viewer-independent eligibility
- heads.py       the head cache: per-author rows (newest capped entries as numpy matrices)
- id_tables.py   numpy id tables: author -> row hash table, request id sets, exclusion bit table
- query.py       the in-network query over the heads, in a few vectorised steps
- reference.py   the same query by brute force, which tests check the fast path against
- wire.py        posts encoded once as response entries
- user_store.py  social graph (last-writer-wins edges), profiles, engagements, served ids
- ingest.py      aiokafka consumer: manual assignment of every partition (each replica holds
                 the full state), replay from the retention window, catch-up detection
- service.py     ThunderService handlers (validation, responses) and the grpc.aio servicer
- app.py         ThunderApp: stores + ingestor + server + trim/stats tasks (in-process API)
- main.py        `foryou thunder`
"""
