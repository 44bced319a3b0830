"""Flack's tests. Run them with `make test`, `python manage.py test` or `pytest`."""
