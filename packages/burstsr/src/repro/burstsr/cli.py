"""Command-line entry point of repro.burstsr."""


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("not implemented")
