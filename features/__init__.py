"""Feature pipeline keyed to age bands: resident, course and interaction features."""
