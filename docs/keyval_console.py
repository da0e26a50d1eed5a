"""``.. keyval-console::``: shell sessions of ``manage.py keyval`` that are also tests.

The directive shows its content as a console session, and hands the doctest
builder a hidden test that runs each ``$ python manage.py keyval ...`` line
through ``call_command`` and compares what it prints with the lines that
follow it. Other ``$`` lines (comments for the reader, ``echo $?``) are shown
only. A ``CommandError`` is printed as ``CommandError: message``, as
``manage.py`` prints it on stderr before exiting with status 1; the
command's own standard error is shown with its output, as a terminal shows
both. A command line ending in `` \\`` goes on on the next line, as in a shell.
Commands see a terminal 80 columns wide.
"""

from __future__ import annotations

import shlex
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

COMMAND_PREFIX = "$ python manage.py keyval "

#: Defines ``keyval(*args)`` for the tests. It runs in the build's scratch
#: folder (``DOCS_WORKDIR`` of docs_settings, removed after the build) so that
#: files the examples write (exports) do not land in the checkout.
DOCTEST_SETUP = """
def keyval(*args):
    import os
    import sys
    from unittest import mock
    from django.conf import settings
    from django.core.management import call_command
    from django.core.management.base import CommandError
    previous = os.getcwd()
    os.chdir(settings.DOCS_WORKDIR)
    try:
        with mock.patch.dict(os.environ, {"COLUMNS": "80"}):
            call_command("keyval", *args, stderr=sys.stdout)
    except CommandError as error:
        print(f"CommandError: {error}")
    finally:
        os.chdir(previous)
"""


def to_doctest(lines: list[str]) -> str:
    """Turn a console session into doctest source."""
    test: list[str] = []
    testing = False
    command = ""
    for line in lines:
        if command:  # the rest of a command line continued with a backslash
            command += " " + line.strip()
        elif line.startswith("$ "):
            testing = line.startswith(COMMAND_PREFIX)
            command = line if testing else ""
        elif testing:
            test.append(line if line.strip() else "<BLANKLINE>")
            continue
        if command.endswith(" \\"):
            command = command[:-2]
        elif command:
            args = shlex.split(command[len(COMMAND_PREFIX) :])
            test.append(f">>> keyval(*{args!r})")
            command = ""
    return "\n".join(test) + "\n"


class KeyValConsole(SphinxDirective):
    """A console block whose ``manage.py keyval`` lines run as a hidden doctest."""

    has_content = True

    def run(self) -> list[Any]:
        """Return the visible block and the hidden test."""
        lines = list(self.content)
        text = "\n".join(lines)
        shown = nodes.literal_block(text, text, language="console")
        self.set_source_info(shown)
        source = to_doctest(lines)
        # What sphinx.ext.doctest makes of a ``.. doctest:: :hide:`` block.
        test = nodes.comment(source, source)
        test["testnodetype"] = "doctest"
        test["groups"] = ["default"]
        test["options"] = {}
        self.set_source_info(test)
        return [shown, test]


def setup(app: Any) -> dict[str, Any]:
    """Register the directive."""
    app.add_directive("keyval-console", KeyValConsole)
    return {"parallel_read_safe": True}
