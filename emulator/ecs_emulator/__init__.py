"""A local ECS endpoint: key pairs, instances, signatures, persistence, fault injection."""

__version__ = "0.1.0"
