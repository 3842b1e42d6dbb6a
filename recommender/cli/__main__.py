"""``python -m recommender.cli``."""

from recommender.cli import main

main()
