"""The application's errors, all JSON: {"error": "Not Found", "message": "user not found"}.

The browser client reads the errors of the web page as well as the API's, so the
handler belongs to the application: create_app() registers it with init_app().
"""
from flask import jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES


def init_app(app):
    """Make every HTTP error of an application a JSON one."""
    app.register_error_handler(HTTPException, http_error)


def error_response(status, message):
    """Return the JSON response that every error uses."""
    response = jsonify(error=HTTP_STATUS_CODES[status], message=message)
    response.status_code = status
    return response


def http_error(error):
    """Turn Flask's and Werkzeug's HTML errors into JSON ones."""
    response = error_response(error.code, error.description)
    for name, value in error.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
