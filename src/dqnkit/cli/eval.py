"""placeholder until implemented."""


def main() -> None:
    raise SystemExit("not implemented yet")
