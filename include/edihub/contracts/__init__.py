"""Data contracts: Great Expectations suites run on every parsed batch, with row-level verdicts."""
