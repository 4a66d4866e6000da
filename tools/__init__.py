"""Developer tools that are not part of the deployed pipeline (data generators, benchmarks helpers)."""
