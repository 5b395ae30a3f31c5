"""Backups of a bridge to S3 and restore from them (`lighthouse-bridge backup|restore`).

A backup is a directory ``<prefix>/<namespace>/<name>/<UTC timestamp>/`` holding a pg_dump (custom format) of the
event store, the bridge's configuration, optionally a Redis snapshot labelled ``cache``, and ``manifest.json``, written
last: a backup without a manifest is incomplete and never restored from.

Modules: layout (keys and ids), manifest, retention (pure selection), storage (S3 streaming), postgres (pg_dump,
pg_restore, statistics), configdump, cachedump, runner (the three operations), cli (argparse wiring).
"""
