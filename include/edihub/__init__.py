"""EDI hub of the Caisses Sociales de Monaco: collect, check, load and acknowledge partner files."""

__version__ = "0.1.0"
