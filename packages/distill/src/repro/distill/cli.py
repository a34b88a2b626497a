"""Command-line entry point of repro.distill."""


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("not implemented")
