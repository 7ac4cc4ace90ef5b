"""Ready-made pipeline templates, one folder each (``pipe.yaml`` and its scripts).

These folders are packages only so that their scripts ship with annoloop; a pipe runs a
script from its file, it does not import it.
"""
