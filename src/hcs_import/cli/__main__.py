"""`python -m hcs_import.cli`: the same command as `hcs-import`."""

from . import main

main()
