"""Training the ranker and the retriever on examples built from the foryou topics."""
