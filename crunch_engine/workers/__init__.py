"""Workers: thin run loops (one process each) around the services."""
