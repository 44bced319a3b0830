"""The application for a production WSGI server.

Run it with gunicorn and the settings in gunicorn.conf.py, as the Procfile does:

    gunicorn -c gunicorn.conf.py flack.wsgi:app

Settings come from the environment (or .env), as for manage.py: set
FLACK_CONFIG=production, a SECRET_KEY and a broker. gunicorn.conf.py tells the
app which green threads it runs on, for Socket.IO. Presence no longer needs a
thread in each process: Celery beat sends one sweep for the whole deployment.
"""
from . import background, create_app, main

app = create_app()
background.check_broker(app)  # a clear error at the start, not when a message is posted
main.check_client_files()  # the page would load without its Socket.IO client
