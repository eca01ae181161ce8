"""Held-out evaluation of the ranker and retriever against simple baselines."""
