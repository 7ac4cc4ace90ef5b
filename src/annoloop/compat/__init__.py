"""Compatibility layers for scripts and templates written for other tools.

- :mod:`annoloop.compat.lost`: LOST pipeline scripts run with only their import changed
  (``from annoloop.compat.lost import script``), and LOST's JSON pipeline templates convert to
  annoloop templates.
"""
