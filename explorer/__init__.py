"""The feed explorer: a small web app (`foryou ui`) that shows, explains and tunes a running
stack's For You feeds. It is an ordinary gRPC client of HomeMixer, Thunder and Phoenix (async
grpc.aio stubs, so a slow service never blocks the event loop). See docs/explorer.md."""
