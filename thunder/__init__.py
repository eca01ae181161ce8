"""Thunder: in-memory stores of recent posts and user state, fed by Kafka, served over gRPC.

- settings.py    every default (retention, per-author caps, request limits) in one place
- post_store.py  posts by id and per-author Timelines; the in-network query
- heads.py       per-author "head" rows (newest capped entries as numpy matrices) and the
                 numpy id sets the in-network query reads in a few vectorised steps
- user_store.py  social graph (last-writer-wins edges), profiles, engagements, served ids
- ingest.py      aiokafka consumer: manual assignment of every partition (each replica holds
                 the full state), replay from the retention window, catch-up detection
- service.py     ThunderService handlers (validation, responses) and the grpc.aio servicer
- app.py         ThunderApp: stores + ingestor + server + trim/stats tasks (in-process API)
- main.py        `foryou thunder`
"""
