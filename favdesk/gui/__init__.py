"""The desktop app: a thin Qt shell that renders the core's state and turns clicks into calls."""
