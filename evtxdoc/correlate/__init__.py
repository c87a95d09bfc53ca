"""Join attempts: each device's steps lined up with what the connector did, skew-aware.

The flow (issue 4, design.md §3, domain.md (d)), one module a stage:
1. `evidence`: pick the step and connector events out of the timeline (vectorized).
2. `machines`: tie a device's OOBE name to its new name; attach supporting files.
3. `device`: each device machine, its events on its own final clock (`clock`: clock sets)
   and split into attempt drafts judged from the device side (`attempts`).
4. `matching`: connector requests to attempts by computer name, then device id (EntDMID, or
   the Entra device id), and only then by time window; consistency checks; each device's
   offset against its connector from causal order.
5. `results`: the Attempt records (corrected times, damage-aware connector evidence),
   connector-only attempts and notes; `run` chains the stages; `table` is what rules read.
"""

from evtxdoc.correlate.results import damage_text, missing_logs
from evtxdoc.correlate.run import correlate
from evtxdoc.correlate.table import attempts_frame

__all__ = ["attempts_frame", "correlate", "damage_text", "missing_logs"]
