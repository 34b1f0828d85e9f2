"""Benchmarks behind `strongroom bench`. Each measures its reference in the same run."""
