"""The defaults a deployment gets without configuring anything meet the PCI DSS v4.0.1
authentication requirements that docs/compliance/pci-dss.md maps here."""

from __future__ import annotations

from strongroom.security.auth.passwords import PASSWORD_CHARS_MIN, check_password_strength
from strongroom.settings import Settings


def test_an_idle_session_ends_within_15_minutes() -> None:  # 8.2.8
    assert Settings().session_idle_s <= 15 * 60


def test_lockout_after_at_most_10_attempts_for_at_least_30_minutes() -> None:  # 8.3.4
    settings = Settings()
    assert settings.login_failures_max <= 10
    assert settings.lockout_s >= 30 * 60


def test_passwords_have_at_least_12_characters() -> None:  # 8.3.6
    assert PASSWORD_CHARS_MIN >= 12
    assert check_password_strength("a" * (PASSWORD_CHARS_MIN - 1)) is not None
    assert check_password_strength("a" * PASSWORD_CHARS_MIN) is None
