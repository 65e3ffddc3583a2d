"""Root pytest configuration: the book's notebooks and tests run in fast mode.

Set DDLEARN_FAST=0 in the environment to run the notebooks in full mode
under nbval instead (minutes rather than seconds).
"""
import os

os.environ.setdefault("DDLEARN_FAST", "1")
