"""Hypothesis profiles for the hostile-input property tests (issue 6).

``default``: hypothesis' own default profile is left alone (other suites' property tests use
it); the hostile tests cap themselves at :data:`QUICK_EXAMPLES` under it, so the normal
suite stays fast. ``long``: ``pytest --hypothesis-profile=long`` runs 2,000 examples per
property. Imported from ``tests/conftest.py`` so the profile exists before pytest's
hypothesis plugin loads the one named on the command line.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

QUICK_EXAMPLES = 40
LONG_EXAMPLES = 2000

settings.register_profile(
    "long",
    max_examples=LONG_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def hostile_settings(quick: int = QUICK_EXAMPLES) -> settings:
    """Settings for one property test: ``quick`` examples under the default profile, else the profile's count."""
    current = settings.get_current_profile_name()
    examples = quick if current == "default" else settings.default.max_examples
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
