"""PostgreSQL: versioned migrations, the file registry, COPY loads in one transaction per file."""
