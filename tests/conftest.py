"""Shared test fixtures: bundled photos, throwaway PostgreSQL, moto S3."""

pytest_plugins = [
    "tests.fixtures.photos",
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
]
