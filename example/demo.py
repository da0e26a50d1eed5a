#!/usr/bin/env python3
"""Store and read values through django_keyval's Python API, saying what it does.

Run after ``manage.py migrate``; ``python3 dev.py demo`` does both.
"""

import os
import sys
import time
from pathlib import Path

import django

# Importable from anywhere: the example project lives beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
django.setup()

from django_keyval.models import KeyVal  # noqa: E402  (needs django.setup())


def say(code: str, result: object) -> None:
    """Print a line of code and what it gave: a value, or the exception raised."""
    if isinstance(result, Exception):
        print(f">>> {code}\n{type(result).__name__}: {result}")
    else:
        print(f">>> {code}\n{result!r}")


def main() -> None:
    kv = KeyVal("demo")
    kv.flush()  # start from an empty store, so reruns print the same
    print('kv = KeyVal("demo")  # a store named "demo"')

    say(
        'kv.set("greeting", {"text": "hi"})  # True: the key is new',
        kv.set("greeting", {"text": "hi"}),
    )
    say(
        'kv.set("greeting", {"text": "hello"})  # False: overwritten',
        kv.set("greeting", {"text": "hello"}),
    )
    say('kv.get("greeting")', kv.get("greeting"))
    say('kv.exists("greeting")', kv.exists("greeting"))

    try:
        kv.get("missing")
    except KeyError as error:
        say('kv.get("missing")  # raises a KeyError subclass', error)
    say('kv.get_default("missing", "fallback")', kv.get_default("missing", "fallback"))

    other = KeyVal("demo.other")
    other.set("greeting", "a different store, a different value")
    say('KeyVal("demo.other").get("greeting")', other.get("greeting"))
    say('kv.get("greeting")  # unchanged', kv.get("greeting"))

    say('kv.incr("visits")  # a missing key counts as 0', kv.incr("visits"))
    say('kv.incr("visits", 10)', kv.incr("visits", 10))

    say(
        'kv.set("token", "abc", timeout=1)  # expires after 1 second',
        kv.set("token", "abc", timeout=1),
    )
    say('kv.get_default("token")', kv.get_default("token"))
    time.sleep(1.5)
    say('kv.get_default("token")  # 1.5 s later', kv.get_default("token"))

    say('kv.pop("greeting")  # read and delete', kv.pop("greeting"))
    say('kv.delete("greeting", ignore_keyerror=True)', kv.delete("greeting", ignore_keyerror=True))

    kv.flush()
    say('kv.flush(); kv.exists("visits")', kv.exists("visits"))
    other.flush()

    kv.disconnect()
    try:
        kv.get("greeting")
    except NameError as error:
        say('kv.disconnect(); kv.get("greeting")  # raises a NameError subclass', error)


if __name__ == "__main__":
    main()
