"""PostgreSQL: versioned migrations, the file registry, COPY loads in one transaction per file."""

# The partition key of the message store, the tables a file fills (migration 0021; registry
# tables aside): the first day of the UTC month of the file's receipt, ``edi.receipt_month``.
RECEIPT_MONTH = "received_month"
