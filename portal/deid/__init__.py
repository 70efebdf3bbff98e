"""De-identification (anonymisation) jobs: models, services, tasks and pages around the plain-Python
anonymiser in ``portal.anonymiser``.
"""
