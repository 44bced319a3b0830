"""The database models of Flack: users, their API tokens, and messages.

The SQLAlchemy object is created here without an application; create_app() binds
it to each application it makes with db.init_app(app). That way this module needs
nothing from the package's __init__, which can import the models without a cycle.
"""
import hashlib
import secrets
import sqlite3

from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    BigInteger,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    event,
    inspect,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, validates
from sqlalchemy.orm.attributes import flag_modified

from . import nicknames, utils
from .passwords import hash_password


class Base(DeclarativeBase):
    """Base class of the models."""
    # Every constraint gets a predictable name, so that a migration can name the
    # constraint it drops or changes; without one, each database makes up its own.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def enforce_foreign_keys(dbapi_connection, connection_record):
    """Make SQLite keep the foreign keys, ON DELETE CASCADE included, as PostgreSQL does."""
    # SQLite ignores them unless each new connection asks (PostgreSQL always keeps them).
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

# The limits of what a user types in, which the API checks and the login form shows.
NICKNAME_MAX_LENGTH = 32  # the column's size: changing it needs a migration
# NFKC makes a string up to 18 times longer (U+FDFA, one character, becomes 18), and
# a nickname's key is its NFKC form: the key's column must hold 18 times the nickname.
NICKNAME_KEY_MAX_LENGTH = 18 * NICKNAME_MAX_LENGTH
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


class Stamped:
    """A model whose new rows take their times from one reading of the clock."""
    # The columns that a new row sets to the current time.
    stamped_on_creation = ()

    def __init__(self, **fields):
        now = utils.timestamp()
        super().__init__(**{**dict.fromkeys(self.stamped_on_creation, now), **fields})


class Timestamps(Stamped):
    """Creation and update times, and the change number that clients' cursors follow."""
    stamped_on_creation = ("created_at", "updated_at")

    created_at: Mapped[float]
    updated_at: Mapped[float]
    # Given by the database when the row is created or updated_at changes: clients
    # ask for the rows whose change is above the last one they saw.
    change: Mapped[int] = mapped_column(BigInteger, index=True)

    def touch(self):
        """Record that the row changed just now, which gives it a new change number."""
        self.updated_at = utils.timestamp()
        # Modified even if the clock reads as before: the change number must move.
        flag_modified(self, "updated_at")


class ChangeCounter(db.Model):
    """The last change number given out, in the table's one row."""
    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)


@event.listens_for(ChangeCounter.__table__, "after_create")
def insert_the_counter(table, connection, **kwargs):
    """Give a new change_counter table its one row (the migrations insert their own)."""
    connection.execute(table.insert().values(id=1, last=0))


def next_changes(session, count=1):
    """Return the first of count new change numbers, for rows the session's transaction changes.

    The UPDATE locks the counter's row until the transaction ends, so a second writer,
    in any process on any host, waits for the first one's commit before it gets its
    numbers: rows become visible in the order of their change numbers, and a client
    that has seen change n has seen every change below n. One UPDATE numbers a whole
    batch of rows: the lock is taken once, however many rows change.
    """
    last = session.execute(
        update(ChangeCounter).where(ChangeCounter.id == 1)
        .values(last=ChangeCounter.last + count).returning(ChangeCounter.last)).scalar_one()
    return last - count + 1


@event.listens_for(Session, "before_flush")
def number_the_changes(session, flush_context, instances):
    """Give each new row, and each row whose updated_at changed, a change number of its own."""
    changed = [row for row in [*session.new, *session.dirty] if isinstance(row, Timestamps) and (
        row in session.new or inspect(row).attrs.updated_at.history.has_changes())]
    if changed:
        first = next_changes(session, len(changed))
        for number, row in enumerate(changed, first):
            row.change = number


class User(Timestamps, db.Model):
    """A chat user."""
    __tablename__ = "users"
    # The presence sweep looks for online users not seen since a cutoff.
    __table_args__ = (Index("ix_users_online_last_seen_at", "online", "last_seen_at"),)
    stamped_on_creation = ("created_at", "updated_at", "last_seen_at")

    id: Mapped[int] = mapped_column(primary_key=True)
    nickname: Mapped[str] = mapped_column(String(NICKNAME_MAX_LENGTH))  # as typed, and shown
    # What makes a nickname taken: two that RFC 8266 compares as equal have one key.
    nickname_key: Mapped[str] = mapped_column(String(NICKNAME_KEY_MAX_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    online: Mapped[bool] = mapped_column(default=False)
    last_seen_at: Mapped[float]

    messages: Mapped[list["Message"]] = relationship(back_populates="author")
    tokens: Mapped[list["Token"]] = relationship(
        back_populates="user", cascade="all, delete-orphan")

    @validates("nickname")
    def set_nickname_key(self, attribute, nickname):
        """Give a new nickname its key; raise ValueError if RFC 8266 refuses the nickname."""
        self.nickname_key = nicknames.nickname_key(nickname)
        return nickname

    def set_password(self, password):
        """Store a salted hash of the password, never the password itself."""
        self.password_hash = hash_password(password)

    def mark_seen(self):
        """Record that the user was just seen, and mark them online.

        last_seen_at is written at most once every LAST_SEEN_INTERVAL seconds: a user
        who sends many requests costs the database one write in that time, not one each.
        """
        now = utils.timestamp()
        if not self.online:
            self.online = True
            self.last_seen_at = now
            self.touch()
        elif now - self.last_seen_at >= current_app.config["LAST_SEEN_INTERVAL"]:
            self.last_seen_at = now

    def go_offline(self):
        """Mark the user offline, as an update that clients see."""
        self.online = False
        self.touch()

    @property
    def owner(self):
        """The user who may edit this user: the user themselves."""
        return self

    def to_dict(self):
        """Return the user as the API shows it."""
        return {
            "id": self.id,
            "nickname": self.nickname,
            "online": self.online,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "change": self.change,
            "last_seen_at": self.last_seen_at,
            "_links": {"self": utils.url_for("api.get_user", id=self.id)},
        }


class Token(Stamped, db.Model):
    """An API token; only a SHA-256 digest of it is stored."""
    __tablename__ = "tokens"
    stamped_on_creation = ("created_at",)

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[float]
    expires_at: Mapped[float]

    user: Mapped[User] = relationship(back_populates="tokens")

    @staticmethod
    def digest_of(token):
        """Return the digest under which a token is stored."""
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user):
        """Create a token for the user; return the token itself and its row."""
        token = secrets.token_urlsafe(32)
        row = cls(digest=cls.digest_of(token), user=user)
        row.expires_at = row.created_at + current_app.config["TOKEN_LIFETIME"]
        return token, row


class Process(db.Model):
    """A web process that holds Socket.IO connections, and when it last said it is alive."""
    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # host, pid and a random part
    # Each process refreshes its one row every PRESENCE_REFRESH_INTERVAL: a process
    # that dies cannot say that its connections closed, so the presence sweep forgets
    # the processes that went silent, and their connections with them.
    seen_at: Mapped[float]


class Connection(db.Model):
    """A browser's open Socket.IO connection: its user is online while one is open."""
    __tablename__ = "connections"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)  # Socket.IO's id for it
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The token it logged in with: when the token goes, the connection goes too.
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"),
                                          index=True)
    # The process that holds it: when the process goes, the connection goes too.
    process_id: Mapped[str] = mapped_column(ForeignKey("processes.id", ondelete="CASCADE"),
                                            index=True)


class Message(Timestamps, db.Model):
    """A chat message, kept both as Markdown and as sanitised HTML."""
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # True from the moment the message is saved until a background task has added
    # the previews of its links to html; updated_at changes then too.
    previews_pending: Mapped[bool] = mapped_column(default=False)
    # When the author last changed the text: updated_at also changes when previews arrive.
    edited_at: Mapped[float | None]

    author: Mapped[User] = relationship(back_populates="messages")

    @property
    def owner(self):
        """The user who may edit this message: its author."""
        return self.author

    def to_dict(self):
        """Return the message as the API shows it."""
        return {
            "id": self.id,
            "source": self.source,
            "html": self.html,
            "user_id": self.user_id,
            "previews_pending": self.previews_pending,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "edited_at": self.edited_at,
            "change": self.change,
            "_links": {
                "self": utils.url_for("api.get_message", id=self.id),
                "author": utils.url_for("api.get_user", id=self.user_id),
            },
        }
