"""The ``annoloop`` command line: thin commands over service functions."""
