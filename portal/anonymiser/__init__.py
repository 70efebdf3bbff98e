"""The anonymiser: de-identification of clinical images and tables, in plain Python.

``keys``, ``report``, ``annex_e``, ``dicom``, ``pixels``, ``photos``, ``wsi``, ``tables`` and
``dispatch`` import no Django and no app of the portal: the anonymiser can be read and tested alone,
and any app may use it (it stands at the bottom of the layers, with ``portal.lib``). The
``portal.deid`` app wraps it in jobs (models, services, tasks, pages).
"""
