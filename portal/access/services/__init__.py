"""Every change to data access, split by what it changes.

- ``requests``: the application workflow (draft → submitted → screening → committee → decision →
  signature → countersignature → granted → end of use → closed; returns, withdrawal, revocation)
- ``grants``: grants, their object permissions, expiry, pausing and extension
- ``reports``: provision records and usage reports, and what follows an overdue one
"""
