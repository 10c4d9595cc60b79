"""The console's widgets and modals, one per file."""
