"""Code that runs inside the built image.

A dependency leaf: it imports only the standard library, packager.constants and its own modules
(tests/test_architecture.py checks this), because it is copied verbatim into every image where
pack itself is not installed.
"""
