"""The admin in a real browser: Selenium driving Chromium, as Django's own admin tests do.

Needs the ``selenium`` package (the ``test`` extra) and Debian's ``chromium``
and ``chromium-driver``. Without them the tests are skipped with the reason,
except under continuous integration (``CI=true``), where they fail: a CI run
must not pass without having driven the browser.
"""

from __future__ import annotations

import os
import shutil
import unittest
from typing import Any

from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.urls import reverse

from django_keyval.models import KeyVal

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1024",
]
#: Seconds to wait for a page or an element.
WAIT = 20


def _missing_requirements() -> str | None:
    """Return why the browser cannot run, or ``None`` when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e .[test])"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium is not installed (apt-get install chromium)"
    if not shutil.which("chromedriver"):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def _start_browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    service = Service(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


class AdminBrowserTests(StaticLiveServerTestCase):
    """Log in, filter, search, edit a value as JSON, see it in the list, delete it."""

    browser: Any

    @classmethod
    def setUpClass(cls) -> None:
        missing = _missing_requirements()
        if missing is not None:
            if os.environ.get("CI", "").lower() == "true":
                raise RuntimeError(f"the admin browser tests cannot run under CI: {missing}")
            raise unittest.SkipTest(missing)
        super().setUpClass()
        try:
            cls.browser = _start_browser()
        except Exception:
            super().tearDownClass()
            raise
        cls.browser.implicitly_wait(0)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.browser.quit()
        super().tearDownClass()

    def setUp(self) -> None:
        User.objects.create_superuser("admin", "admin@example.com", "password")
        self.changelist = self.live_server_url + reverse(
            "admin:django_keyval_keyvalpair_changelist"
        )

    # -- helpers ---------------------------------------------------------------------

    def wait_for(self, css: str) -> Any:
        """Return the first element matching ``css`` once it is on the page."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.browser, WAIT).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def submit_and_wait(self, element: Any) -> None:
        """Click ``element`` and wait until the next page has loaded."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        html = self.browser.find_element("tag name", "html")
        element.click()
        wait = WebDriverWait(self.browser, WAIT)
        wait.until(expected_conditions.staleness_of(html))
        wait.until(
            lambda browser: browser.execute_script("return document.readyState") == "complete"
        )

    def rows(self) -> list[tuple[str, str, str]]:
        """The (store, key, value) columns of the list of pairs."""
        self.wait_for("#changelist")
        return [
            (
                row.find_element("css selector", ".field-store").text,
                row.find_element("css selector", ".field-key").text,
                row.find_element("css selector", ".field-value_preview").text,
            )
            for row in self.browser.find_elements("css selector", "#result_list tbody tr")
        ]

    def log_in(self) -> None:
        self.browser.get(f"{self.live_server_url}/admin/login/?next={self.changelist}")
        self.wait_for("#id_username").send_keys("admin")
        self.browser.find_element("id", "id_password").send_keys("password")
        self.submit_and_wait(self.browser.find_element("css selector", "input[type=submit]"))

    # -- tests ------------------------------------------------------------------------

    def test_filter_search_edit_and_delete(self) -> None:
        KeyVal("app").set("greeting", {"text": "hi"})
        KeyVal("app").set("farewell", "bye")
        KeyVal("other").set("greeting", 1)
        self.log_in()
        self.assertEqual(
            self.rows(),
            [
                ("app", "farewell", "'bye'"),
                ("app", "greeting", "{'text': 'hi'}"),
                ("other", "greeting", "1"),
            ],
        )

        # Filter by store, then search within it.
        store_filter = self.browser.find_element(
            "css selector", "#changelist-filter a[href*='store=app']"
        )
        self.submit_and_wait(store_filter)
        self.assertEqual(
            [row[:2] for row in self.rows()], [("app", "farewell"), ("app", "greeting")]
        )
        search = self.browser.find_element("id", "searchbar")
        search.send_keys("greet")
        self.submit_and_wait(
            self.browser.find_element("css selector", "#changelist-search input[type=submit]")
        )
        self.assertEqual(self.rows(), [("app", "greeting", "{'text': 'hi'}")])

        # Open the pair and edit its JSON.
        self.submit_and_wait(self.browser.find_element("link text", "greeting"))
        self.assertIn('"text": "hi"', self.wait_for(".keyval-value").text)
        textarea = self.browser.find_element("id", "id_value_json")
        textarea.clear()
        textarea.send_keys('{"text": "hello", "count": 2}')
        self.submit_and_wait(self.browser.find_element("name", "_save"))
        self.assertIn("was changed successfully", self.wait_for(".messagelist").text)
        self.assertIn(("app", "greeting", "{'text': 'hello', 'count': 2}"), self.rows())
        self.assertEqual(KeyVal("app").get("greeting"), {"text": "hello", "count": 2})

        # Delete it.
        self.submit_and_wait(self.browser.find_element("link text", "greeting"))
        self.submit_and_wait(self.wait_for("a.deletelink"))
        self.submit_and_wait(self.wait_for("form input[type=submit]"))
        self.assertIn("was deleted successfully", self.wait_for(".messagelist").text)
        self.assertEqual(self.rows(), [])  # the filter and search are kept
        self.browser.get(self.changelist)
        self.assertEqual(
            [row[:2] for row in self.rows()], [("app", "farewell"), ("other", "greeting")]
        )
        self.assertFalse(KeyVal("app").exists("greeting"))

    def test_invalid_json_is_shown_as_an_error(self) -> None:
        KeyVal("app").set("doc", [1])
        self.log_in()
        self.submit_and_wait(self.wait_for("#result_list a[href*='/change/']"))
        textarea = self.wait_for("#id_value_json")
        textarea.clear()
        textarea.send_keys("[1, 2")
        self.submit_and_wait(self.browser.find_element("name", "_save"))
        self.assertIn("Enter valid JSON", self.wait_for(".errorlist").text)
        self.assertEqual(KeyVal("app").get("doc"), [1])

    def test_flush_stores_after_confirmation(self) -> None:
        from selenium.webdriver.support.ui import Select

        KeyVal("app").set_many({"a": 1, "b": 2})
        KeyVal("keep").set("c", 3)
        self.log_in()
        self.wait_for("#result_list")
        self.browser.find_elements("css selector", "#result_list input.action-select")[0].click()
        Select(self.browser.find_element("name", "action")).select_by_value("flush_selected_stores")
        self.submit_and_wait(self.browser.find_element("css selector", "button[name=index]"))
        self.assertIn("app", self.wait_for("#flush-stores").text)
        self.submit_and_wait(self.browser.find_element("css selector", "form input[type=submit]"))
        self.assertIn("Flushed 1 store (2 pairs deleted).", self.wait_for(".messagelist").text)
        self.assertEqual([row[:2] for row in self.rows()], [("keep", "c")])
