"""Benchmarks of django-keyval against its database's floor and the alternatives.

Run ``python bench/run.py --help`` from the repository root; the method is in
``bench/README.rst``.
"""
