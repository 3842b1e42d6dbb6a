"""The demo district generator: communities, residents, a course catalogue and a year of
participation drawn from hidden tastes. Uses only :mod:`recommender.domain`."""
