"""The hybrid ranker, in three stages of one module each.

- :mod:`models.hybrid.candidates`: the component models and the candidates they propose;
- :mod:`models.hybrid.signals`: one row of signals per (user, candidate) pair;
- :mod:`models.hybrid.reranker`: the gradient-boosted trees that score those rows;

and :mod:`models.hybrid.ranker`, the :class:`HybridRanker` estimator that ties them together.
"""

from models.hybrid.candidates import COMPONENTS, SIMPLEST_FIRST
from models.hybrid.ranker import HybridRanker
from models.hybrid.signals import SIGNALS

__all__ = ["COMPONENTS", "SIGNALS", "SIMPLEST_FIRST", "HybridRanker"]
