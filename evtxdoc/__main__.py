"""`python -m evtxdoc` runs the CLI."""

from evtxdoc.cli import main

main()
