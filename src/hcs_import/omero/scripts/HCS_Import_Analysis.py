#!/usr/bin/env python
"""OMERO.script: import HCS analysis results (InCell, MIAS, Flex, ScanR, ...) as OMERO.tables and ROIs.

Upload with `omero script upload src/hcs_import/omero/scripts/HCS_Import_Analysis.py --official`; the
server's script processor needs `hcs-import[omero]` installed in its Python. Users run it from OMERO.web or
OMERO.insight on Plates or Screens; it reads the analysis files from each plate's fileset or attachments.
"""

import omero.scripts as scripts
from omero.model import FileAnnotationI
from omero.rtypes import rlong, robject, rstring

from hcs_import.omero.server_side import run


def main() -> None:
    client = scripts.client(
        "HCS_Import_Analysis.py",
        "Import the analysis results of high-content-screening plates as OMERO.tables (per well and per object)"
        " and ROIs. Re-running replaces what an earlier run of the same results created.",
        scripts.String("Data_Type", optional=False, grouping="1", description="Plate or Screen",
                       values=[rstring("Plate"), rstring("Screen")], default="Plate"),
        scripts.List("IDs", optional=False, grouping="2", description="Plate or Screen IDs").ofType(rlong(0)),
        scripts.String("Mode", grouping="3", description="server: tables service; file: one .h5 upload",
                       values=[rstring("server"), rstring("file")], default="server"),
        scripts.Bool("Dry_Run", grouping="4", description="Only report what would be created and deleted",
                     default=False),
        scripts.Bool("Allow_Missing", grouping="5", default=False,
                     description="Store results of wells/fields without images with id -1 instead of stopping"),
        version="0.1.0",
        authors=["hcs-import"],
        institutions=[""],
        contact="",
    )
    try:
        inputs = client.getInputs(unwrap=True)
        message, annotation = run(client.getSession(), inputs["Data_Type"], [int(i) for i in inputs["IDs"]],
                                  mode=inputs.get("Mode", "server"), dry_run=bool(inputs.get("Dry_Run", False)),
                                  allow_missing=bool(inputs.get("Allow_Missing", False)), log=print)
        client.setOutput("Message", rstring(message))
        if annotation is not None:
            client.setOutput("File_Annotation", robject(FileAnnotationI(annotation, False)))
    finally:
        client.closeSession()


if __name__ == "__main__":
    main()
