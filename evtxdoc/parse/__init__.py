"""Parse stage: the structural scan and the EVTX backends (see backends.py, structure.py)."""

from evtxdoc.parse.backends import (
    RawRecord,
    fallback_available,
    python_evtx_records,
    rs_available,
    rs_records,
)
from evtxdoc.parse.structure import Structure, scan

__all__ = [
    "RawRecord",
    "Structure",
    "fallback_available",
    "python_evtx_records",
    "rs_available",
    "rs_records",
    "scan",
]
