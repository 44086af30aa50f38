"""``python -m dsxir.optimizer_session.service [OPTIONS]``: the ``serve`` command alone."""

from dsxir.optimizer_session.service.cli import main

main()
