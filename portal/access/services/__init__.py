"""Every change to data access, split by what it changes.

- ``requests``: the application workflow (draft → submitted → screening → committee → decision →
  signature → countersignature → granted → end of use → closed; returns, withdrawal, revocation)
- ``grants``: grants, their object permissions, expiry, pausing and extension
- ``reports``: provision records and usage reports, and what follows an overdue one
- ``amendments``: extensions and changes of the named users (延長・変更申請)
- ``warnings``: warnings 90/60/30 days before a grant or what it rests on lapses
- ``training``: a named user's renewed research-ethics training, recorded on the grant
"""
