"""clusterkit benchmarks: `python -m benchmarks` (see README.md here)."""
