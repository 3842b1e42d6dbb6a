"""Community course recommender: domain, store, orchestration (train, rank, cohorts), CLI."""

__version__ = "0.1.0"
