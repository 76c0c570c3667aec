"""The bench's figure groups (see harness/bench.py): one module per comparison."""
