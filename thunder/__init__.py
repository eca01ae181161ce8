"""Thunder: in-memory stores of recent posts and user state, fed by Kafka, served over gRPC."""
