"""The feature pipeline: id mapping, value codes, the interaction matrix and course content."""
