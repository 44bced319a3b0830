"""The application for a production WSGI server, with its presence thread.

Run it with gunicorn and the settings in gunicorn.conf.py, as the Procfile does:

    gunicorn -c gunicorn.conf.py flack.wsgi:app

Settings come from the environment (or .env), as for manage.py: set
FLACK_CONFIG=production and a SECRET_KEY. Every worker process imports this
module and so starts a presence thread of its own: that is scalability
problem 2, which a later stage of the tutorial fixes.
"""
from . import background, create_app
from .presence import PresenceThread

app = create_app()
background.check_broker(app)  # a clear error at the start, not when a message is posted
presence = PresenceThread(app)
presence.start()
