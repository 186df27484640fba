"""The composition root: the one package that imports all the others.

It assembles the engine for each way in: the ASGI app (`asgi`), the `timebank` command (`cli`),
the scheduled jobs (`jobs`), the demo (`demo`), the schema's migrations (`migrate`,
`migrations/`) and the copy of a store to another database (`copystore`), with the settings
they read (`settings`) and the check of the records against the ledgers (`crosscheck`). Nothing
below imports it.
"""
