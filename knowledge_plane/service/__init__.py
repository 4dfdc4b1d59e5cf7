"""The runtime plane: a read-only FastAPI service answering from the published index versions."""
