"""Debian's headless Chromium for the browser tests, driven through its chromedriver.

Needs the Debian packages `chromium` and `chromium-driver` (/usr/bin/chromium,
/usr/bin/chromedriver); without them a test skips, unless STRONGROOM_REQUIRE_BROWSER is on (CI
installs them). The driver is named explicitly and SE_OFFLINE is set: selenium-manager never
downloads a browser or a driver (a downloaded browser build cannot run here)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support import flags

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 30

T = TypeVar("T")


def browser_paths(what: str) -> tuple[str, str]:
    """(chromium, chromedriver); skips (or fails, when required) without them."""
    chromium = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    driver = shutil.which("chromedriver") or (CHROMEDRIVER if Path(CHROMEDRIVER).exists() else None)
    if chromium is None or driver is None:
        flags.skip_or_fail(
            f"{what} needs Debian's `chromium` and `chromium-driver` packages "
            "(apt-get install chromium chromium-driver)",
            flags.REQUIRE_BROWSER,
        )
    assert chromium is not None
    assert driver is not None
    return chromium, driver


@contextlib.contextmanager
def chromium(
    chromium_path: str, driver_path: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """A headless Chromium session (its driver's log in `log`); `localhost` resolves to
    127.0.0.1 (a secure context, where the session's Secure cookie is kept)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must fetch nothing
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--host-resolver-rules=MAP localhost 127.0.0.1",
    ):
        options.add_argument(argument)
    service = Service(executable_path=driver_path, log_output=str(log))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: Any, found: Callable[[Any], T | None], what: str) -> T:
    """What `found(driver)` answers once it is not None (or falsy), within WAIT_S."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        value: T = WebDriverWait(driver, WAIT_S).until(found)
    except TimeoutException:
        raise AssertionError(f"{what}: not within {WAIT_S} s at {driver.current_url}") from None
    return value
