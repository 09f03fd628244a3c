"""The Palot service: one per ``PALOT_HOME``, owning the core; front ends are its clients (``palot.client``)."""

from .run import ServeOptions, Service, serve

__all__ = ["ServeOptions", "Service", "serve"]
