"""One root exception; every failure we raise on purpose is a leaf of it.

At the Kafka boundary errors are values (``codec.decode`` returns a dead
letter); these exceptions are for start-up and tooling, where stopping with a
clear message is right.
"""


class LeadstreamError(Exception):
    """Root of every error Leadstream raises on purpose."""


class RulesError(LeadstreamError):
    """The rules file is missing, not YAML, or breaks the rules schema."""


class InputError(LeadstreamError):
    """An input file given on the command line cannot be read."""


class TopologyError(LeadstreamError):
    """Topics the worker reads do not have the partition count the worker relies on."""


class ConfigError(LeadstreamError):
    """A setting cannot be used as given (e.g. a port that is already taken)."""


class NotConfirmed(LeadstreamError):
    """An erase request was sent, but its erasure was not published in time."""
