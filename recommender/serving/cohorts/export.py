"""Cohort suggestions as CSV for spreadsheets: UTF-8 with a byte-order mark, so Excel shows
Chinese course titles instead of mojibake; a suppressed figure is the text ``suppressed``.

The file has two sections, each a header row and its rows, separated by one blank line:
the suggested courses (:data:`COLUMNS`), then the cohort's unmet demand
(:data:`UNMET_COLUMNS`: the categories and tags it is drawn to that no open course near it
covers, most drawn first). The unmet section's header is written even when it has no rows,
so a reader can always split the file at the first blank line.
"""

from __future__ import annotations

import csv
import io

from recommender.serving.cohorts.figures import is_suppressed

COLUMNS = ("cohort_community_id", "cohort_band", "cohort_residents", "horizon_days", "rank",
           "course_id", "title", "category", "community_id", "community_name", "street",
           "capacity", "seats_left", "expected_demand", "expected_demand_district",
           "fill_forecast", "oversubscribed", "under_filled", "decision")
UNMET_COLUMNS = ("cohort_community_id", "cohort_band", "cohort_residents", "horizon_days",
                 "kind", "name", "residents_drawn", "expected_demand_elsewhere")
BOM = "\ufeff"


def _cell(value) -> str:
    if is_suppressed(value):
        return "suppressed"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def suggestions_csv(result: dict) -> bytes:
    """One row per suggested course (a suppressed cohort: one row whose figures say so), a
    blank line, then one row per unmet-demand entry under its own header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    head = [result["community_id"], result["band"], result["residents"], result["horizon_days"]]
    if not result["items"]:
        writer.writerow([_cell(v) for v in head] + [""] * (len(COLUMNS) - len(head)))
    for item in result["items"]:
        venue = item["venue"]
        decision = item.get("decision")
        writer.writerow([_cell(v) for v in [
            *head, item["rank"], item["course_id"], item["title"], item["category"],
            venue["community_id"], venue["community_name"], venue["street"], item["capacity"],
            item["seats_left"], item["expected_demand"], item["expected_demand_district"],
            item["fill_forecast"], item["oversubscribed"], item["under_filled"],
            decision if decision is None or isinstance(decision, str) else
            decision.get("action", "")]])
    writer.writerow([])
    writer.writerow(UNMET_COLUMNS)
    for gap in result.get("unmet_demand", []):
        writer.writerow([_cell(v) for v in [*head, gap["kind"], gap["name"],
                                            gap["residents_drawn"],
                                            gap["expected_demand_elsewhere"]]])
    return (BOM + out.getvalue()).encode("utf-8")


__all__ = ["COLUMNS", "UNMET_COLUMNS", "suggestions_csv"]
