"""One router per resource: query, health, caller apps."""
