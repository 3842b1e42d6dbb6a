"""Community course recommender: the engine in layers (data, evaluation, training, serving)."""

__version__ = "0.1.0"
