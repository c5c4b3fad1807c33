"""`cartable reimage`: reimage workstations now through their school server, read the status."""
