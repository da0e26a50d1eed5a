"""The admin in a real browser: Selenium driving Chromium, as Django's own admin tests do.

Needs the ``selenium`` package (the ``test`` extra) and Debian's ``chromium``
and ``chromium-driver``. Without them the tests are skipped with the reason,
except under continuous integration (``CI=true``), where they fail: a CI run
must not pass without having driven the browser.
"""

from __future__ import annotations

import datetime
import os
import shutil
import unittest
from typing import Any

from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.urls import reverse
from django.utils import timezone

from django_keyval.models import KeyVal, KeyValPair
from tests.helpers import insert_raw

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


class AdminBrowserTestCase(StaticLiveServerTestCase):
    """Starts Chromium once per class; logs in as a superuser."""

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
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        html = self.browser.find_element("tag name", "html")
        element.click()
        wait = WebDriverWait(self.browser, WAIT)
        is_stale = expected_conditions.staleness_of(html)

        def old_page_gone(browser: Any) -> bool:
            try:
                return bool(is_stale(browser))
            except WebDriverException as error:
                # Chromedriver may report a node of the page being unloaded
                # as "does not belong to the document" instead of as stale.
                if "does not belong to the document" in str(error):
                    return True
                raise

        wait.until(old_page_gone)
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


class AdminBrowserTests(AdminBrowserTestCase):
    """Log in, filter, search, edit a value as JSON, see it in the list, delete it."""

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
        textarea = self.browser.find_element("id", "id_value_json")
        self.assertIn('"text": "hi"', textarea.get_attribute("value"))
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


class EditorBrowserTests(AdminBrowserTestCase):
    """The editor's side: a field per type, read-only values, the add form, races."""

    def open_pair(self, store: str, key: str) -> None:
        row = KeyValPair.objects.get(store=store, key=key)
        self.browser.get(
            self.live_server_url + reverse("admin:django_keyval_keyvalpair_change", args=[row.pk])
        )
        self.wait_for("#keyvalpair_form")

    def visible(self, css: str) -> bool:
        elements = self.browser.find_elements("css selector", css)
        return bool(elements) and elements[0].is_displayed()

    def save(self) -> None:
        self.submit_and_wait(self.browser.find_element("name", "_save"))

    def test_each_type_is_edited_with_its_own_field(self) -> None:
        kv = KeyVal("app")
        kv.set("greeting", "hi")
        kv.set("count", 5)
        kv.set("enabled", False)
        kv.set("launch", datetime.date(2025, 1, 2))
        self.log_in()
        self.open_pair("app", "count")
        number = self.browser.find_element("id", "id_value_int")
        self.assertEqual(number.get_attribute("type"), "number")
        self.assertEqual(number.get_attribute("value"), "5")
        for other in ("str", "bool", "json", "date", "datetime"):
            self.assertFalse(self.visible(f".field-value_{other}"), other)
        self.assertFalse(self.visible(".field-confirm_type_change"))

        # Text: typing hello just works.
        self.open_pair("app", "greeting")
        text = self.browser.find_element("id", "id_value_str")
        self.assertEqual(text.get_attribute("type"), "text")
        text.clear()
        text.send_keys("hello")
        self.save()
        self.assertIn("was changed successfully", self.wait_for(".messagelist").text)
        self.assertEqual(KeyVal("app").get("greeting"), "hello")

        # A checkbox for a bool, a date picker for a date.
        self.open_pair("app", "enabled")
        self.browser.find_element("id", "id_value_bool").click()
        self.save()
        self.assertIs(KeyVal("app").get("enabled"), True)
        self.open_pair("app", "launch")
        self.assertTrue(self.visible(".field-value_date .datetimeshortcuts"))
        date = self.browser.find_element("id", "id_value_date")
        date.clear()
        date.send_keys("2026-03-04")
        self.save()
        self.assertEqual(KeyVal("app").get("launch"), datetime.date(2026, 3, 4))

    def test_changing_the_type_asks_for_a_confirmation(self) -> None:
        from selenium.webdriver.support.ui import Select

        KeyVal("app").set("count", 5)
        self.log_in()
        self.open_pair("app", "count")
        Select(self.browser.find_element("id", "id_value_type")).select_by_value("str")
        self.assertTrue(self.visible(".field-value_str"))
        self.assertFalse(self.visible(".field-value_int"))
        self.assertTrue(self.visible(".field-confirm_type_change"))
        self.browser.find_element("id", "id_value_str").send_keys("five")
        self.save()
        self.assertIn("The stored value is of type int", self.wait_for(".errorlist").text)
        self.assertEqual(KeyVal("app").get("count"), 5)
        self.assertTrue(self.visible(".field-value_str"))  # the choice is kept
        self.browser.find_element("id", "id_confirm_type_change").click()
        self.save()
        self.assertIn("was changed successfully", self.wait_for(".messagelist").text)
        self.assertEqual(KeyVal("app").get("count"), "five")

    def test_read_only_values_are_shown_and_can_be_replaced(self) -> None:
        from selenium.webdriver.support.ui import Select

        KeyVal("app").set("pair", (1, "a"))
        insert_raw("app", "broken", b"{nope", "json")
        self.log_in()
        self.open_pair("app", "pair")
        self.assertEqual(self.wait_for("pre.keyval-value").text, "(1, 'a')")
        self.assertIn(
            "No field can edit a value of type tuple", self.wait_for(".keyval-reason").text
        )
        # No empty box: no value field is shown until a type is chosen.
        for kind in ("str", "int", "json"):
            self.assertFalse(self.visible(f".field-value_{kind}"))

        self.open_pair("app", "broken")
        self.assertIn("⚠ cannot decode", self.wait_for("pre.keyval-value").text)
        Select(self.browser.find_element("id", "id_value_type")).select_by_value("json")
        self.browser.find_element("id", "id_value_json").send_keys('{"fixed": true}')
        self.browser.find_element("id", "id_confirm_type_change").click()
        self.save()
        self.assertIn("was changed successfully", self.wait_for(".messagelist").text)
        self.assertEqual(KeyVal("app").get("broken"), {"fixed": True})

    def test_the_add_form_offers_stores_and_warns_about_a_new_one(self) -> None:
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import Select

        KeyVal("cache", serializer="json").set("a", [1])
        KeyVal("app").set("b", {"x": 1})
        self.log_in()
        self.browser.get(self.live_server_url + reverse("admin:django_keyval_keyvalpair_add"))
        store = self.wait_for("#id_store")
        options = self.browser.find_elements("css selector", "#keyval-store-names option")
        self.assertEqual([option.get_attribute("value") for option in options], ["app", "cache"])
        store.send_keys("cache")
        hint = self.browser.find_element("css selector", ".keyval-store-hint")
        self.assertEqual(
            hint.text,
            "Existing store: values are written with the json serializer, as its other pairs are.",
        )
        store.send_keys("2")
        self.assertIn("⚠ New store: no store is called “cache2” yet.", hint.text)
        self.assertIn("written with the pickle serializer (KEYVAL_SERIALIZER)", hint.text)
        store.send_keys(Keys.BACKSPACE)  # back to "cache"
        self.browser.find_element("id", "id_key").send_keys("settings")
        Select(self.browser.find_element("id", "id_value_type")).select_by_value("json")
        self.browser.find_element("id", "id_value_json").send_keys('{"depth": 3}')
        self.save()
        self.assertIn("was added successfully", self.wait_for(".messagelist").text)
        row = KeyValPair.objects.get(store="cache", key="settings")
        self.assertEqual((row.serializer, bytes(row.value or b"")), ("json", b'{"depth":3}'))

    def test_a_save_never_overwrites_a_change_made_meanwhile(self) -> None:
        kv = KeyVal("app")
        kv.set("hits", 10)
        self.log_in()
        # Only the expiry changes: the counter's new value is kept.
        self.open_pair("app", "hits")
        for _ in range(5):
            kv.incr("hits")
        self.browser.find_element("id", "id_expires_at_0").send_keys("2099-01-01")
        self.browser.find_element("id", "id_expires_at_1").send_keys("12:00:00")
        self.save()
        self.assertIn("was changed successfully", self.wait_for(".messagelist").text)
        self.assertEqual(kv.get("hits"), 15)
        self.assertEqual(timezone.localtime(kv.expires_at("hits")).year, 2099)
        # A new value over a changed one is refused.
        self.open_pair("app", "hits")
        kv.incr("hits")
        number = self.browser.find_element("id", "id_value_int")
        number.clear()
        number.send_keys("0")
        self.save()
        self.assertIn(
            "This pair was changed since you opened it", self.wait_for(".errorlist.nonfield").text
        )
        self.assertEqual(kv.get("hits"), 16)


class ChangeListBrowserTests(AdminBrowserTestCase):
    """The list of pairs at 1280 pixels, and the screenshots of the admin's page in the docs."""

    def fill(self) -> None:
        now = timezone.now()
        settings_store = KeyVal("app.settings")
        settings_store.set("site_name", "Example shop")
        settings_store.set("welcome_text", "Welcome back! Orders placed before 2 pm ship today.")
        settings_store.set("max_upload_mb", 25)
        settings_store.set("vat_rate", 0.2)
        settings_store.set("maintenance", False)
        settings_store.set("launch_date", datetime.date(2026, 3, 1))
        settings_store.set(
            "homepage",
            {"banner": "Winter sale", "featured": [101, 205, 317], "show_reviews": True},
        )
        settings_store.set("origin", ("warehouse-2", 51.5, -0.12))
        counters = KeyVal("counters")
        counters.set("page_views", 48213)
        counters.set("signups_today", 37, timeout=600)
        KeyValPair.objects.filter(key="signups_today").update(
            expires_at=now + datetime.timedelta(minutes=10, seconds=20)
        )
        cache = KeyVal("api-cache", serializer="json")
        cache.set("rates:EUR", {"USD": 1.08, "GBP": 0.86}, timeout=3600)
        cache.set("rates:JPY", {"USD": 0.0067}, timeout=60)
        KeyValPair.objects.filter(key="rates:JPY").update(
            expires_at=now - datetime.timedelta(hours=2, minutes=3)
        )

    def test_every_column_fits_at_1280_pixels_with_the_sidebar_open(self) -> None:
        self.fill()
        self.log_in()
        self.wait_for("#result_list")
        self.screenshot("admin-changelist.png")
        self.assertTrue(self.visible_sidebar())
        self.assertEqual(self.browser.execute_script("return window.innerWidth"), 1280)
        overflow = self.browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        self.assertLessEqual(overflow, 0)
        # The table scrolls sideways inside its box when it is too wide.
        results = self.browser.find_element("css selector", "#changelist-form .results")
        box = self.browser.execute_script(
            "const box = arguments[0]; return [box.scrollWidth, box.clientWidth,"
            " box.getBoundingClientRect().right]",
            results,
        )
        self.assertLessEqual(box[0], box[1])
        for cell in self.browser.find_elements("css selector", "#result_list th, #result_list td"):
            right = self.browser.execute_script(
                "return arguments[0].getBoundingClientRect().right", cell
            )
            self.assertLessEqual(right, box[2], cell.text)
        self.assertEqual(
            [
                header.text
                for header in self.browser.find_elements(
                    "css selector", "#result_list thead th .text"
                )
            ][1:],
            ["STORE", "KEY", "VALUE", "TYPE", "EXPIRES", "VERSION", "UPDATED AT"],
        )
        expiry = {
            row.find_element("css selector", ".field-key").text: row.find_element(
                "css selector", ".field-expiry"
            )
            for row in self.browser.find_elements("css selector", "#result_list tbody tr")
        }
        self.assertEqual(expiry["signups_today"].text, "in 10 min")
        self.assertEqual(expiry["rates:JPY"].text, "expired 2 h ago")
        exact = expiry["rates:JPY"].find_element("tag name", "span").get_attribute("title")
        self.assertRegex(exact, r"\d")  # the exact time, shown on hover
        self.assertEqual(expiry["page_views"].text, "Never")
        types = [
            cell.text
            for cell in self.browser.find_elements(
                "css selector", "#result_list .field-value_type_name"
            )
        ]
        self.assertIn("tuple", types)

    def test_screenshots_of_the_change_form(self) -> None:
        self.fill()
        self.log_in()
        for store, key, name in (
            ("app.settings", "welcome_text", "admin-change-str.png"),
            ("counters", "page_views", "admin-change-int.png"),
            ("app.settings", "homepage", "admin-change-dict.png"),
            ("app.settings", "origin", "admin-change-read-only.png"),
        ):
            with self.subTest(key):
                row = KeyValPair.objects.get(store=store, key=key)
                self.browser.get(
                    self.live_server_url
                    + reverse("admin:django_keyval_keyvalpair_change", args=[row.pk])
                )
                self.wait_for("#keyvalpair_form")
                overflow = self.browser.execute_script(
                    "return document.documentElement.scrollWidth"
                    " - document.documentElement.clientWidth"
                )
                self.assertLessEqual(overflow, 0)
                self.screenshot(name)

    def visible_sidebar(self) -> bool:
        sidebar = self.browser.find_elements("id", "nav-sidebar")
        return bool(sidebar) and sidebar[0].is_displayed()

    def screenshot(self, name: str) -> None:
        """Save the page as ``name`` in KEYVAL_ADMIN_SCREENSHOTS, when it is set."""
        directory = os.environ.get("KEYVAL_ADMIN_SCREENSHOTS")
        if not directory:
            return
        self.browser.set_window_size(1280, 100)
        height = self.browser.execute_script("return document.documentElement.scrollHeight")
        self.browser.set_window_size(1280, height + 100)  # the window's frame
        self.browser.save_screenshot(os.path.join(directory, name))
        self.browser.set_window_size(1280, 1024)
