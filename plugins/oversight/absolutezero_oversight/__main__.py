"""``python -m absolutezero_oversight``: print the default rule table (id, category, what it flags)."""

import sys

from absolutezero_oversight.rules import rules_table

sys.stdout.write(rules_table() + "\n")
