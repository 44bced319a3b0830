"""Nicknames compared as RFC 8266 (the PRECIS NicknameCaseMapped profile) compares them.

Two nicknames that look alike must be one nickname, or a user could pass for another.
RFC 8266 maps each nickname to one comparison form: full-width letters become the usual
ones (NFKC), upper case becomes lower case, composed and decomposed accents become one
form (NFKC), and runs of spaces become one space, none at either end. It refuses
nicknames that hold characters such as controls, which have no place in a name.
"""
from precis_i18n import get_profile

PROFILE = get_profile("NicknameCaseMapped")


def nickname_key(nickname):
    """Return the form under which a nickname is unique; raise ValueError if RFC 8266 refuses it."""
    # A refused string raises UnicodeEncodeError, which is a ValueError.
    return PROFILE.enforce(nickname)
