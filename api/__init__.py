"""The FastAPI service: platform, admin and health routes over :mod:`recommender.serving`."""
