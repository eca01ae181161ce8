"""Bring data foryou did not generate into the four topics: `foryou import SOURCE`.

One module per source (movielens.py, interactions.py); common.py holds what they share (the
time mapping that fits a long log into the services' retention window, sessions of
impressions, writing to an event file or to Kafka). docs/data-import.md describes the
mappings and the interactions schema."""
