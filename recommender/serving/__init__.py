"""The serving layer: what the API (and any other front end) calls.

Everything a front end needs is importable from here: the service and its model holder, the
errors it raises (each with its HTTP status), the store it reads and the error the store raises
when its database does not answer, the vocabularies a request is checked against, the
languages and names its texts are written in (:mod:`recommender.serving.wording`), and the model
registry's record of who made a version current. Front ends import this package and
:mod:`recommender.settings` only.
"""

from recommender.data.store import Store, StoreError, open_store, unavailable_line
from recommender.domain import BAND_NAMES, CATEGORIES
from recommender.serving.errors import InvalidInput, NotFound, NotReady, ServiceError
from recommender.serving.follow import Follower
from recommender.serving.holder import ModelHolder
from recommender.serving.service import RecommendationService, ResidentFacts
from recommender.serving.wording import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    REASON_CODES,
    band_label,
    category_name,
    requested_language,
)
from recommender.training.registry import RegistryError, last_move

__all__ = ["BAND_NAMES", "CATEGORIES", "DEFAULT_LANGUAGE", "Follower", "InvalidInput", "LANGUAGES",
           "ModelHolder", "NotFound", "NotReady", "REASON_CODES", "RecommendationService",
           "RegistryError", "ResidentFacts", "ServiceError", "Store", "StoreError", "band_label",
           "category_name", "last_move", "open_store", "requested_language", "unavailable_line"]
