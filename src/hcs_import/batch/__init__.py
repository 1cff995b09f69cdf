"""Batch ingestion: find every plate under a folder, import each once, remember what was done.

discover    walks ROOT and finds plate folders (any registered format)
fingerprint says whether a plate's result files changed since it was imported
ledger      SQLite record of every plate (status, fingerprint, outputs, error, timings); survives kills
task        the per-plate unit of work, run in a worker process or on a Dask worker
runner      runs the plates in parallel (process pool or Dask) and keeps the ledger up to date
watch       drop-folder mode: import plates once their files stop changing
summary     the end-of-run table and JSON
upload      OMERO upload of a written bundle from a worker (--server), omero-py imported lazily
synth_tree  a generated tree of synthetic plates of every format, one corrupt (tests, demos)
"""
