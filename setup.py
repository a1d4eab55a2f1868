"""colorize_tf: see setup.cfg for the metadata."""
from setuptools import setup

setup()
