"""Evaluation: the protocols that split a DataBundle (temporal, cold-user, cold-item, random)
and the ranking metrics at k, overall and per age band."""
