"""De-identification (anonymisation) of clinical images and tables.

The core — ``keys``, ``report``, ``annex_e``, ``dicom``, ``pixels``, ``photos``, ``wsi``, ``tables``,
``dispatch`` — is plain Python, usable without Django; jobs (models, services, tasks, pages) wrap it.
"""
