"""Seeds: written for this environment, validated like proposals, consistent with induction."""

from __future__ import annotations

from absolutezero_sql import seeds
from absolutezero_sql.induction import FALLBACK


def test_identity_seed_matches_the_induction_fallback():
    database, query = seeds.PAIRS[0]
    assert query == FALLBACK[0] and database.startswith(FALLBACK[1][0])


def test_induction_response_has_the_requested_number_of_databases():
    for count in (2, 5, 8):
        response = seeds.induction_response(count)
        assert response.count("```database") == count and "```message" in response
