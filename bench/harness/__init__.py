"""The benchmark harness: start stages, load them, record, chart and report."""
