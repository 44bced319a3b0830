"""Rate limits: how often one address may register, one nickname may be tried or one
address fail to log in, and one user may post or edit.

Flask-Limiter counts the requests of each key (an address, a nickname, a user) in
Redis when REDIS_URL is set, so that every web process counts together; else in the
process's own memory, where each process has its own count (`make run` has one).
The limits themselves are settings (config.py), read at each request. A request over
a limit gets a 429 with Retry-After, and the view does not run: a refused login costs
no password hash.
"""
from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth import token_auth
from .nicknames import nickname_key

# Without a key_func of its own, a limit counts per client address.
limiter = Limiter(key_func=get_remote_address)


def init_app(app):
    """Count the limits of an application where its settings say."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    # Under Flack's prefix in Redis. Given to the storage, which each app makes anew: the
    # one Limiter keeps the RATELIMIT_KEY_PREFIX of the first app it serves, for good.
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS",
                          {"key_prefix": f"{app.config['REDIS_PREFIX']}limits"})
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)  # Retry-After on a 429
    # Redis away (restarting, say) must not stop the chat: each process counts in its
    # own memory until Redis answers again.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    if app.config["PROXIES"]:
        # The address to count is the client's, which the proxies put in X-Forwarded-For;
        # trusting more entries than there are proxies would let a client pick its own.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXIES"])
    limiter.init_app(app)


def setting(name):
    """Return a function that reads a limit from the settings, at each request."""
    return lambda: current_app.config[name]


def failed(response):
    """Tell whether a login failed: only failures count against an address."""
    return response.status_code == 401


def hashed_a_password(response):
    """Tell whether a registration got as far as hashing its password: 201, or 409 taken."""
    # A body that its schema refused cost nothing, and a typo should not use up the limit.
    return response.status_code in (201, 409)


def nickname_tried():
    """Return the key of the nickname that a login tries, in the form nicknames are compared."""
    auth = request.authorization
    try:
        return f"nickname:{nickname_key(auth.username if auth else '')}"
    except ValueError:  # not a nickname at all: no user has it, and one key counts them all
        return "nickname:?"


def current_user():
    """Return the key of the user whose token the request carries."""
    return f"user:{token_auth.current_user().id}"


# A guess at one user's password, from anywhere, and many guesses from one address. Every
# login counts against its nickname, at once: counted only once it failed, logins sent
# together would all pass the check before the first failure was counted. Per address,
# only failures count, or an office behind one address could not log in at nine.
login_per_nickname = limiter.limit(
    setting("LOGIN_LIMIT_PER_NICKNAME"), key_func=nickname_tried,
    error_message="too many logins for this nickname: wait before trying again")
login_per_address = limiter.limit(
    setting("LOGIN_LIMIT_PER_ADDRESS"), deduct_when=failed,
    error_message="too many failed logins from this address: wait before trying again")
register_per_address = limiter.limit(
    setting("REGISTER_LIMIT_PER_ADDRESS"), deduct_when=hashed_a_password,
    error_message="too many new users from this address: wait before registering again")
# Posts and edits count together: "messages" names the one count that they share.
messages_per_user = limiter.shared_limit(
    setting("MESSAGE_LIMIT_PER_USER"), "messages", key_func=current_user,
    error_message="too many messages: wait before posting again")
