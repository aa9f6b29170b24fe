"""The `pack` command line: thin click commands over the library; output.py does all printing."""
