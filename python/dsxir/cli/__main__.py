"""``python -m dsxir.cli``: the same as the ``dsxir-checkpoint`` console script."""

from dsxir.cli.main import main

main()
