"""The governance console: the reviewers' and operators' web UI and REST API (build-plane side)."""
