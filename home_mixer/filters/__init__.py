"""The pre-scoring and post-selection filters, one per file. Each returns a keep mask (a
bool per candidate); the pipeline records what it removed."""
