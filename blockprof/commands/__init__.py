"""One module per CLI command; each exports ``cli_command``. Heavy imports stay inside functions."""
