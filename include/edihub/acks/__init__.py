"""Acknowledgments: one for every inbound file, whatever became of it."""
