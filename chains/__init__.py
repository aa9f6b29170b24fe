"""Truss-compatible Chains API (see chains-compat); filled in by the chains issue."""
