"""How things are named: tenants, users and providers (`name_validator`), and
models (CONTRACT section 3). One rule each, for the models, the API, the admin,
the YAML config and the /v1 validation alike."""

from __future__ import annotations

import re

from django.core.validators import RegexValidator

# Model names are 1-100 of these characters.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,100}$")

name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$",
    "Use 1-100 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.",
)
