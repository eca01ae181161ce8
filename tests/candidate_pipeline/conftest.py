"""Makes tests/candidate_pipeline/pipeline_fakes.py importable as `pipeline_fakes`."""
