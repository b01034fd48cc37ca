"""The `nas` command line: parses, validates, calls the packages, prints. No logic of its own."""
