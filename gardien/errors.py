"""The small exception hierarchy of gardien; only ``gardien.cli.main`` maps them to exit codes."""


class GardienError(Exception):
    """Base of every error gardien raises on purpose."""


class ConfigError(GardienError):
    """The cluster config cannot be used; ``problems`` lists every problem with its place."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))
