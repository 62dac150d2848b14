"""The CRM: the entities' records in a database (SQLite or PostgreSQL), their migrations, who may
read and change them, ticket workflows with SLA clocks, and the audit log."""
