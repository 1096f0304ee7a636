"""The `crunch` command line: a Typer root and one module per command group."""
