"""Community course recommender: domain schema, store, orchestration (train / rank / cohorts), CLI."""

__version__ = "0.1.0"
