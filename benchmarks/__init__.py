"""Speed, memory and quality benchmarks; run each as ``python -m benchmarks.NAME`` from the repo root."""
