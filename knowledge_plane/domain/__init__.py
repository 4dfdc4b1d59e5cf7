"""What both planes share: ids, documents, quarantine reasons and text analysis (no I/O)."""
