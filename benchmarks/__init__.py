"""The benchmark suite: `python -m benchmarks.suite` (see its docstring)."""
