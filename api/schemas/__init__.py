"""The API's marshmallow schemas: what every endpoint reads and answers, shared with the CLI's ``--json``.

One serialisation per view of the read model (a task, a worker, a queue, a failure group), so that
the API and ``jobdeck ... --json`` print exactly the same field names.
"""
