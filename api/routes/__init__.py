"""Routers: ``platform`` (recommendations, events), ``admin`` (model), ``health``."""
