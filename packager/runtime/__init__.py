"""Code that runs inside the built image.

A dependency leaf: it imports only the standard library and nothing else of packager, because it
is copied verbatim into every image (pack itself is not installed there).
"""
