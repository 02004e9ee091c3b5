"""`python -m app.cli`: the `cifarlab` command without its console script."""

from app.cli import main

main()
