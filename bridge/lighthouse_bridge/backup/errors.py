"""Errors the backup tool reports as one clear line and a non-zero exit code."""

from __future__ import annotations


class BackupError(Exception):
    """A failure with a message meant for the operator; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(BackupError):
    """Missing or invalid settings (flags or LIGHTHOUSE_* variables)."""

    exit_code = 2


class StorageError(BackupError):
    """S3 cannot be reached, refuses the request, or lacks an object."""

    exit_code = 3


class IntegrityError(BackupError):
    """A checksum, size or post-restore count does not match the manifest."""

    exit_code = 4


class RefusedError(BackupError):
    """The operation would destroy data and was not asked to (e.g. restore into a non-empty database)."""

    exit_code = 5
