"""Palot's language server: where agents work in the open files, and commands and code actions to steer them.

``palot-lsp`` (``palot_lsp.__main__``) serves one editor over stdio. See
``README.md`` beside this file for the surface and editor setup.
"""

from .commands import ACTION_COMMANDS, COMMAND_FIELDS, COMMANDS, OBJECT_FIELDS
from .server import FEATURES, PalotLanguageServer, create_server

__all__ = ["ACTION_COMMANDS", "COMMANDS", "COMMAND_FIELDS", "FEATURES", "OBJECT_FIELDS", "PalotLanguageServer",
           "create_server"]
