"""Format contracts: the file's syntax, read by one generic engine per format family."""
