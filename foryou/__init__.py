"""foryou: shared plumbing (configuration, Kafka topics, embedded broker, gRPC server
factory, metrics, logging) and the `foryou` command line."""
