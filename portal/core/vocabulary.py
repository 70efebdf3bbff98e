"""Vocabularies shared by several apps: one definition, so that protocols, datasets and models agree."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Modality(models.TextChoices):
    PATHOLOGY_WSI = "pathology_wsi", _("Pathology whole-slide images")
    ENDOSCOPY = "endoscopy", _("Endoscopy")
    CT = "ct", _("CT")
    MR = "mr", _("MR")
    XRAY = "xray", _("X-ray")
    FUNDUS = "fundus", _("Fundus photographs")
    ULTRASOUND = "ultrasound", _("Ultrasound")
    DERMATOLOGY = "dermatology", _("Dermatology photographs")
