"""Django's own cache tests, run against :class:`~django_keyval.cache.KeyValCache`.

``python -m tests.django_suite`` (see :mod:`tests.django_suite.__main__`)
fetches the test suite of the installed Django release from its source
distribution on PyPI and runs it. Nothing here is collected by ``runtests.py``.
"""
