"""Summaries of repeated runs, and the formatting the tables share."""
import statistics


def summarize(samples):
    """Summarize repeated wrk reports: medians with their range, errors and CPU use."""
    def values(pick):
        return [pick(sample) for sample in samples]

    def median_range(pick, digits):
        return spread(values(pick), digits)

    wall = sum(values(lambda s: s["wall_seconds"]))
    server_cpu = sum(values(lambda s: s["server_cpu_seconds"]))
    wrk_cpu = sum(values(lambda s: s["wrk_cpu_seconds"]))
    busy = sum(values(lambda s: s["machine_busy_cpu_seconds"]))
    return {
        "repetitions": len(samples),
        "requests": sum(values(lambda s: s["requests"])),
        "requests_per_second": median_range(lambda s: s["requests_per_second"], 1),
        "latency_ms": {p: median_range(lambda s, p=p: s["latency_us"]["percentiles"][p] / 1000, 2)
                       for p in ("50", "95", "99")},
        "errors": {kind: sum(s["errors"][kind] for s in samples) for kind in samples[0]["errors"]},
        "bytes_per_response": round(sum(values(lambda s: s["bytes"]))
                                    / max(1, sum(values(lambda s: s["requests"])))),
        # CPU seconds per second of wall time: how many cores each kept busy.
        "server_cores": round(server_cpu / wall, 2),
        "wrk_cores": round(wrk_cpu / wall, 2),
        "other_cores": round(max(0.0, busy - server_cpu - wrk_cpu) / wall, 2),
    }


def spread(values, digits):
    """Return the median, lowest and highest of some values, rounded."""
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def distribution(values, digits=1):
    """Return how many values there are, their p50, p95, mean and highest (None if none)."""
    if not values:
        return None
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(percentile(ordered, 50), digits),
            "p95": round(percentile(ordered, 95), digits),
            "mean": round(statistics.fmean(ordered), digits), "max": round(ordered[-1], digits)}


def percentile(ordered, p):
    """Return the p-th percentile of sorted values, between the two nearest ranks."""
    position = (len(ordered) - 1) * p / 100
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def errors(counts):
    """Format wrk's error counts by kind: "0", or "21 read, 2 timeout"."""
    found = [f"{count} {kind}" for kind, count in counts.items() if count]
    return ", ".join(found) or "0"


def cores(value):
    """Format a number of busy cores."""
    return f"{value:.2f}"

