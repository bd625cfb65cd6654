"""Event streams: the representation, file readers, frame integration and the DVS emulator.

Pure numpy: nothing under ``hsd.events`` imports torch.
"""

from hsd.events.core import Events, UnsortedEventsWarning, validate_events

__all__ = ["Events", "UnsortedEventsWarning", "validate_events"]
