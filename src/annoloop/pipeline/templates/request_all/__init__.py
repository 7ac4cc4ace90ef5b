"""Ready-made pipeline template (see pipe.yaml)."""
