"""One screen per view (screen modes) plus the help and starting screens."""
