"""``python -m b12plan``: the same command line as the ``b12plan`` script."""

from b12plan.cli import main

main()
