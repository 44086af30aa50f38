"""The ``dsxir-checkpoint`` command line (:mod:`dsxir.cli.main`); exit codes in :mod:`.exits`."""
