"""The ``knowledge`` command line: the scriptable face of both planes."""
