"""The application's errors, all JSON: {"error": "Not Found", "message": "user not found"}.

The browser client reads the errors of the web page as well as the API's, so the
handler belongs to the application: create_app() registers it with init_app().
A request body with bad fields also says which: {"error": "Bad Request", "message":
"password: Shorter than minimum length 8.", "fields": {"password": [...]}}.
"""
from flask import jsonify
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.http import HTTP_STATUS_CODES


class InvalidFields(BadRequest):
    """A 400 for a request body whose fields are missing, unknown or not valid."""

    def __init__(self, fields):
        self.fields = fields  # {field name: [what is wrong with it, ...]}
        super().__init__("; ".join(
            " ".join(problems) if name == "_schema" else f"{name}: {' '.join(problems)}"
            for name, problems in fields.items()))


def init_app(app):
    """Make every HTTP error of an application a JSON one."""
    app.register_error_handler(HTTPException, http_error)


def error_response(status, message, **details):
    """Return the JSON response that every error uses."""
    response = jsonify(error=HTTP_STATUS_CODES[status], message=message, **details)
    response.status_code = status
    return response


def http_error(error):
    """Turn Flask's and Werkzeug's HTML errors into JSON ones."""
    details = {"fields": error.fields} if isinstance(error, InvalidFields) else {}
    response = error_response(error.code, error.description, **details)
    for name, value in error.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
