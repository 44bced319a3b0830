"""The scenarios not written yet: registered, so that the page and `list` name them."""

SCENARIOS = []  # Scenario(name=..., number=..., stages=...) for each, measure left None
