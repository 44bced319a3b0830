"""The API's blueprint, in a module of its own so that every part of the API can import it.

If it were created in the package's __init__.py, which imports the resource
modules, each of them would import __init__.py in turn: a circular import.
"""
from flask import Blueprint

api = Blueprint("api", __name__)
