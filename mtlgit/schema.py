"""The vocabulary of format v1 is defined in :mod:`mtlgit.rules`. This module only keeps the import of
``mtlgit/index.py`` working until the index imports mtlgit.rules; delete it then."""

from __future__ import annotations

from mtlgit.rules import FORMATS as FORMATS
from mtlgit.rules import OUTCOMES as OUTCOMES
from mtlgit.rules import SCOPES as SCOPES
from mtlgit.rules import STATUSES as STATUSES
