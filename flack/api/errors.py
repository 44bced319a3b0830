"""The API's errors, all in one place and all JSON: {"error": ..., "message": ...}."""
from werkzeug.exceptions import HTTPException

from .. import utils
from ..auth import basic_auth, token_auth
from .blueprint import api

# Every error of the application is JSON, the web page's too: the browser client reads them.

@api.app_errorhandler(HTTPException)
def http_error(error):
    """Turn Flask's and Werkzeug's HTML errors into JSON ones."""
    response = utils.error_response(error.code, error.description)
    for name, value in error.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


@basic_auth.error_handler
def basic_auth_error(status):
    """Explain a failed nickname/password login."""
    return utils.error_response(status, "invalid nickname or password")


@token_auth.error_handler
def token_auth_error(status):
    """Explain a missing, invalid or expired token."""
    return utils.error_response(status, "a valid token is required")
