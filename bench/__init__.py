"""Benchmark tooling: fetches public recordings at run time and scores the gait pipeline."""
