"""Sub-commands of the ``ctattn`` command line (see :mod:`ctattn.cli`)."""
