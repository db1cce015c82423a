"""Users, roles, bearer tokens and gateway keys; the permission dependencies every API uses."""
