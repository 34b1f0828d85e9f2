"""A SoftHSM2 token for the PKCS#11 key manager's tests.

CI (.ci/run) installs the Debian package `softhsm2`, initialises a token in a temporary
SOFTHSM2_CONF directory and exports STRONGROOM_TEST_PKCS11_{MODULE,TOKEN,PIN}, with
STRONGROOM_REQUIRE_SOFTHSM=1 so that a missing token fails the tests instead of skipping them.
Elsewhere, with softhsm2 installed, one token is initialised for the test session in a
temporary directory; without it the tests skip, naming the package.

One token serves the session (SoftHSM reads its configuration once per process): each test
starts by destroying every Strongroom object on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.support import flags

REQUIRE_SOFTHSM: Final = "STRONGROOM_REQUIRE_SOFTHSM"
MODULES: Final = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
LABEL: Final = "strongroom-tests"
PIN: Final = "1234"  # a throwaway token's PIN


@dataclass(frozen=True)
class Token:
    module: str
    label: str
    pin: str


_session: Token | None = None


def token_or_skip() -> Token:
    """The session's token (made on first use), or a skip (a failure under
    STRONGROOM_REQUIRE_SOFTHSM) that names what is missing."""
    global _session
    if _session is None:
        _session = _find_or_make()
    _wipe(_session)
    return _session


def _find_or_make() -> Token:
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        flags.skip_or_fail("python-pkcs11 is not installed (extra `hsm`)", REQUIRE_SOFTHSM)
    module = os.environ.get("STRONGROOM_TEST_PKCS11_MODULE")
    if module:
        label = os.environ.get("STRONGROOM_TEST_PKCS11_TOKEN", LABEL)
        return Token(module, label, os.environ.get("STRONGROOM_TEST_PKCS11_PIN", PIN))
    found = next((m for m in MODULES if Path(m).is_file()), None)
    util = shutil.which("softhsm2-util")
    if found is None or util is None:
        flags.skip_or_fail(
            "SoftHSM2 is not installed (Debian package softhsm2: apt-get install softhsm2)",
            REQUIRE_SOFTHSM,
        )
    assert found is not None
    assert util is not None
    home = Path(tempfile.mkdtemp(prefix="strongroom-softhsm-"))
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", LABEL, "--so-pin", "0000", "--pin", PIN],
        check=True,
        capture_output=True,
    )
    return Token(found, LABEL, PIN)


def _wipe(token: Token) -> None:
    import pkcs11

    found = pkcs11.lib(token.module).get_token(token_label=token.label)
    try:
        session = found.open(user_pin=token.pin, rw=True)
    except pkcs11.exceptions.UserAlreadyLoggedIn:  # by a key manager of an earlier test
        session = found.open(rw=True)
    with session:
        for obj in list(session.get_objects()):
            label = obj[pkcs11.Attribute.LABEL] or ""
            if label.startswith("strongroom-"):
                obj.destroy()
