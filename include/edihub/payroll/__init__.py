"""Payroll: contribution rates as effective-dated reference data, gross from net, dues per fund."""
