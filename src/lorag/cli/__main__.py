"""`python -m lorag.cli ...` runs the same app as the `lorag` command."""

from lorag.cli import main

main()
