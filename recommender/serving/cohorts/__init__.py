"""Coordinators' cohorts: expected demand against seats, unmet demand, analytics.

:class:`CohortService` answers the coordinator routes; :mod:`.demand` scores every resident
with the model's calibrated probabilities and sums them per cohort, :mod:`.unmet` finds what
no nearby course covers, :mod:`.analytics` reads learning behaviour from the store,
:mod:`.figures` holds the suppression rule and :mod:`.export` the CSV form.
"""

from recommender.serving.cohorts.demand import ALL, ModelNotCalibrated
from recommender.serving.cohorts.export import suggestions_csv
from recommender.serving.cohorts.figures import MIN_RESIDENTS
from recommender.serving.cohorts.service import UNDER_FILLED, CohortService

__all__ = ["ALL", "MIN_RESIDENTS", "UNDER_FILLED", "CohortService", "ModelNotCalibrated",
           "suggestions_csv"]
