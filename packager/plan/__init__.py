"""The build plan: a validated config resolved into pinned weights (and what else a render needs)."""
