"""Scoring protocols by name. Each module holds one protocol class; modules are imported on first use."""

from __future__ import annotations

from rmbench import catalog
from rmbench.protocols.base import MetricOptions, MetricValue, ProtocolResult, ScoringProtocol
from rmbench.registry import Registry

__all__ = ["PROTOCOLS", "MetricOptions", "MetricValue", "ProtocolResult", "ScoringProtocol", "get_protocol"]

#: protocol name -> protocol class, imported on first use (declared in ``rmbench.catalog``, below suites).
PROTOCOLS: Registry[type[ScoringProtocol]] = catalog.PROTOCOLS


def get_protocol(name: str) -> ScoringProtocol:
    """A fresh instance of protocol ``name``; ``SuiteError`` with a 'did you mean' for unknown names."""
    return PROTOCOLS.get(name)()
