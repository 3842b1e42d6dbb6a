"""The serving layer: what the API (and any other front end) calls.

Everything a front end needs is importable from here: the service and its model holder, the
errors it raises (each with its HTTP status), the store it reads and the error the store raises
when its database does not answer, and the vocabularies a request is checked against. Front ends
import this package and :mod:`recommender.settings` only.
"""

from recommender.data.store import Store, StoreError, open_store
from recommender.domain import BAND_NAMES, CATEGORIES
from recommender.serving.errors import InvalidInput, NotFound, NotReady, ServiceError
from recommender.serving.follow import Follower
from recommender.serving.holder import ModelHolder
from recommender.serving.service import RecommendationService, ResidentFacts

__all__ = ["BAND_NAMES", "CATEGORIES", "Follower", "InvalidInput", "ModelHolder", "NotFound",
           "NotReady", "RecommendationService", "ResidentFacts", "ServiceError", "Store",
           "StoreError", "open_store"]
