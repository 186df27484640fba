"""Who is asking and whether they may: roles, bearer tokens, and their refusals."""
