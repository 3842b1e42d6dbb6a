"""Recommendation models behind one interface (:class:`~models.base.Recommender`).

Every model is fitted on a users × items sparse matrix and scores a batch of users from their
rows; see ``models.base`` for the contract and ``tests/models/mixin.py`` for the shared tests.
"""

from models.base import NotFittedError, Recommender, top_n
from models.collaborative import ALS, BPR
from models.content import ContentModel
from models.ease import EASE
from models.factor_autoencoder import FactorAutoencoder
from models.lightfm_hybrid import LightFMHybrid
from models.neighbours import ItemKNN
from models.popularity import CategoryPopularity, Popularity

__all__ = [
    "ALS",
    "BPR",
    "CategoryPopularity",
    "EASE",
    "ContentModel",
    "FactorAutoencoder",
    "ItemKNN",
    "LightFMHybrid",
    "NotFittedError",
    "Popularity",
    "Recommender",
    "top_n",
]
