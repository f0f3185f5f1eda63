"""The API's database: tables, queries and migrations."""
