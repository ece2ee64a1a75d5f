"""The platform core: settings, broker, Redis keys, database, storage, mail.

It imports neither the billing domain nor monitoring (the import-linter contracts check it).
"""
