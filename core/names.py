import re

# CONTRACT section 3: model names are 1-100 of these characters.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,100}$")
