"""syndicate: one merged story per event, with every outlet that carried or cited it."""

__version__ = "0.1.0"
