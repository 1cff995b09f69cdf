"""OMERO CLI plugin shim: `omero hcs-import` (the control lives in hcs_import.omero.plugin).

The OMERO CLI exec's every omero/plugins/*.py on sys.path with `register` in its namespace.
"""

from hcs_import.omero.plugin import HELP, HcsImportControl

try:
    register("hcs-import", HcsImportControl, HELP)  # type: ignore[name-defined]
except NameError:  # imported as a module rather than loaded by the OMERO CLI
    if __name__ == "__main__":
        import sys

        from omero.cli import CLI

        cli = CLI()
        cli.register("hcs-import", HcsImportControl, HELP)
        cli.invoke(sys.argv[1:])
