"""Fake data for tests and benchmarks: generated photos and tiny models. May import
any subpackage; nothing in the library imports it."""
