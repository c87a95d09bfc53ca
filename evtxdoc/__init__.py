"""evtxdoc: explains Autopilot hybrid-join failures from Windows event logs."""

__version__ = "0.1.0"
