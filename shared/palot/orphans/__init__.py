"""Orphans (``palot gc``): what Palot made that no agent record owns any more, and removing it safely (see
:mod:`.sweeper`)."""

from .found import GRACE_SECONDS, KEEP_PREFIX, LIVE_STATES, Found, Scope, tree_size
from .sweeper import Sweeper, summary

__all__ = ["GRACE_SECONDS", "KEEP_PREFIX", "LIVE_STATES", "Found", "Scope", "Sweeper", "summary", "tree_size"]
