"""The markdown snippet the Measured page includes for each scenario, made from its JSON."""


def question(scenario):
    """Say what the scenario measures, as the snippet's first paragraph."""
    return f"**What it measures.** {scenario.question}\n"


def machine_line(results):
    """Say when, on what machine and with what software the results were measured."""
    m = results["machine"]
    stages = ", ".join(f"{version} at `{info['sha'][:10]}`"
                       for version, info in results["stages"].items())
    pythons = sorted({info["python"] for info in results["stages"].values()})
    load = ", ".join(str(value) for value in m["load_average_at_start"])
    tools = [f"Python {', '.join(pythons)}", results.get("load_generator"), stages]
    return (f"Measured on {m['date'][:10]} on {m['cpu_model']} ({m['cpu_count']} CPUs, "
            f"{m['memory_gib']} GiB of memory), {m['os']}, load average {load} at the start; "
            f"{'; '.join(tool for tool in tools if tool)}. "
            f"`make bench` took {results['total_seconds']:.0f} s for this scenario.")


def settings_line(results):
    """List the scenario's settings (durations, clients, ...) as one sentence."""
    settings = ", ".join(f"{name.replace('_', ' ')} {value}"
                         for name, value in results["settings"].items())
    return f"Settings: {settings}."


def measured(scenario, results, chart_link):
    """Return the snippet for a scenario with results: chart, table, machine and reading."""
    parts = [question(scenario)]
    if results.get("smoke"):
        parts.append("!!! warning \"A smoke run\"\n    These numbers come from `make bench-smoke`,"
                     " whose runs last a second: they only show that the benchmark works.\n")
    if chart_link:
        parts.append(f"![{scenario.title}]({chart_link})\n")
    parts.append(scenario.table(results))
    parts.append(machine_line(results) + " " + settings_line(results) + "\n")
    parts.append("In numbers:\n\n" + scenario.reading(results))
    return "\n".join(parts)


def not_measured(scenario, missing):
    """Return the snippet for a scenario that has no results yet."""
    return question(scenario) + "\n" + why_not_measured(scenario, missing)


def why_not_measured(scenario, missing):
    """Say why a scenario has no results yet, and what it needs."""
    if missing:
        needs = " and ".join(missing)
        extra = f", and {scenario.also_needs}" if scenario.also_needs else ""
        return (f"*Not measured yet*: this scenario needs stage {needs}, which does not exist "
                f"yet{extra}.\n")
    if scenario.measure is None:
        return ("*Not measured yet*: its stages exist, but the scenario is not written yet "
                "(`bench/harness/scenarios/`).\n")
    return (f"*Not measured yet*: run `make bench SCENARIO={scenario.name}` on a quiet machine, "
            f"then commit `bench/results/{scenario.name}.json` and "
            f"`docs/img/bench/{scenario.name}.svg`.\n")
