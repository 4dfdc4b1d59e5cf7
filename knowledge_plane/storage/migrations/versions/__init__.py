"""The revisions, oldest first: 0001_initial is the schema the code created before migrations."""
