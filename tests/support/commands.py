"""A real command runner that remembers what each command did (to assert on kills and argv)."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.probes.command import CommandResult, CommandRunner


class RecordingRunner(CommandRunner):
    """The real :class:`CommandRunner`, keeping every :class:`CommandResult` in ``results``."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        super().__init__(prefix)
        self.results: list[CommandResult] = []

    def run(self, argv: Sequence[str], timeout: float, stdin: str | None = None) -> CommandResult:
        result = super().run(argv, timeout, stdin)
        self.results.append(result)
        return result
