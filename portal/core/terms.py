"""Library strings whose Japanese wording the portal sets itself.

allauth translates "Two-Factor Authentication" as 多要素認証; the guidelines the portal's users
work under (and REGULATION.md) say 二要素認証. Marking the msgids here puts them in the portal's
catalogue, which Django consults before the libraries' own.
"""

from django.utils.translation import gettext_noop

LIBRARY_TERMS = (
    gettext_noop("Two-Factor Authentication"),
    gettext_noop("Activate Authenticator App"),
    gettext_noop("Authenticator App"),
)
