"""Speed benchmarks: `python -m benchmarks` runs every bench_*.py script here and prints one table."""
