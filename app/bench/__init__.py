"""Benchmarks behind `cifarlab bench`: each fills a database, measures, and prints its figures
with one JSON object as the last line, so scripts can read it."""
