"""Training: the model inputs built from the feature pipeline, the one recipe that fits the
hybrid, artifacts with checksummed manifests, and the benchmark runner."""
