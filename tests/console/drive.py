"""Drives the operator console in headless Chromium (Debian's chromium and chromedriver,
through Selenium) against a running dev server, as an operator would, and prints what it saw
as one JSON object. Screenshots of the main pages go to the directory it is given."""

import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import Select, WebDriverWait

XSS_BODY = '<script>window.__pwned = 1</script>'
XSS_ATTR = '"><img src=x onerror="window.__pwned = 1">'


def main():
    args = json.loads(sys.argv[1])
    base, shots = args["base"], args["shots"]
    options = Options()
    options.binary_location = args["chromium"]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=args["chromedriver"]), options=options)
    # Views re-render as their data arrives: an element read mid-render is read again.
    wait = WebDriverWait(driver, 15, ignored_exceptions=[StaleElementReferenceException])
    seen = {}
    try:
        driver.get(f"{base}/console/")
        token = wait.until(EC.presence_of_element_located((By.NAME, "token")))
        driver.save_screenshot(f"{shots}/sign-in.png")
        token.send_keys("not-the-token")
        token.submit()
        seen["refused"] = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))).text
        driver.find_element(By.NAME, "token").send_keys(args["admin"])
        driver.find_element(By.NAME, "token").submit()
        wait.until(EC.presence_of_element_located((By.XPATH, "//h1[text()='Hooks']")))
        seen["stored"] = driver.execute_script("return sessionStorage.length")
        seen["cookies"] = driver.get_cookies()

        # A new hook from the form, its name a payload.
        driver.find_element(By.LINK_TEXT, "New hook").click()
        name = wait.until(EC.presence_of_element_located((By.NAME, "name")))
        name.send_keys(XSS_ATTR)
        driver.find_element(By.NAME, "url").send_keys(args["receiver"])
        driver.find_element(By.CSS_SELECTOR, "input[value='PostRegister']").click()
        driver.save_screenshot(f"{shots}/new-hook.png")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.current_url.split("#/hooks/")[-1] not in ("", "new"))
        hook_id = driver.current_url.split("#/hooks/")[-1]
        seen["hookId"] = hook_id
        wait.until(EC.presence_of_element_located((By.ID, "hook")))
        probe(driver, seen, "hook page")

        # 25 events, one of them carrying script in its body.
        for i in range(25):
            data = {"id": f"u_{i}"}
            if i == 0:
                data["bio"] = XSS_BODY + XSS_ATTR
            post(f"{base}/api/events", args["ingest"], {"event": "PostRegister", "data": data})
        deadline = time.time() + 30
        while time.time() < deadline and delivered(base, args["admin"], hook_id) < 25:
            time.sleep(0.2)

        driver.get(f"{base}/console/#/hooks")
        driver.refresh()
        wait.until(EC.presence_of_element_located((By.XPATH, "//h1[text()='Hooks']")))
        time.sleep(0.5)
        seen["listText"] = driver.find_element(By.ID, "main").text
        probe(driver, seen, "hook list")
        driver.save_screenshot(f"{shots}/hooks.png")

        driver.get(f"{base}/console/#/hooks/{hook_id}")
        wait.until(EC.presence_of_element_located((By.XPATH, "//h2[text()='Delivery log']")))
        wait.until(lambda d: len(log_rows(d)) > 0)
        seen["firstPage"] = log_rows(driver)
        driver.save_screenshot(f"{shots}/delivery-log.png")
        driver.find_element(By.XPATH, "//button[text()='Older →']").click()
        wait.until(lambda d: log_rows(d) != seen["firstPage"])
        seen["secondPage"] = log_rows(driver)
        seen["strayText"] = [line for line in driver.find_element(By.ID, "main").text.splitlines()
                             if line in ("null", "undefined", "false")]
        # The oldest delivery (the one with the payload) is on the second page.
        driver.find_elements(By.XPATH, "//button[text()='details']")[-1].click()
        detail = wait.until(EC.presence_of_element_located((By.XPATH, "//h3[text()='Delivered body']/following-sibling::pre")))
        seen["detail"] = detail.text
        probe(driver, seen, "delivery detail")
        driver.save_screenshot(f"{shots}/delivery.png")

        # The log's filters: no delivery failed, and none falls in a window of 2020.
        Select(driver.find_element(By.NAME, "result")).select_by_value("Error")
        wait.until(lambda d: "No deliveries" in d.find_element(By.ID, "log").text)
        seen["errorsOnly"] = log_rows(driver)
        Select(driver.find_element(By.NAME, "result")).select_by_value("")
        wait.until(lambda d: len(log_rows(d)) == 20)
        for name, value in (("startTime", "2020-01-01T00:00"), ("endTime", "2020-01-02T00:00")):
            driver.execute_script(
                "const i = document.getElementsByName(arguments[0])[0];"
                "i.value = arguments[1]; i.dispatchEvent(new Event('change'));", name, value)
        wait.until(lambda d: "No deliveries" in d.find_element(By.ID, "log").text)
        seen["oldWindow"] = log_rows(driver)
        for name in ("startTime", "endTime"):
            driver.execute_script(
                "const i = document.getElementsByName(arguments[0])[0];"
                "i.value = ''; i.dispatchEvent(new Event('change'));", name)
        wait.until(lambda d: len(log_rows(d)) == 20)
        # Back to the oldest delivery for the next steps.
        driver.find_element(By.XPATH, "//button[text()='Older →']").click()
        wait.until(lambda d: len(log_rows(d)) == 5)
        driver.find_elements(By.XPATH, "//button[text()='details']")[-1].click()
        wait.until(EC.presence_of_element_located((By.XPATH, "//button[text()='Re-send']")))

        # Re-send the delivery shown.
        driver.find_element(By.XPATH, "//button[text()='Re-send']").click()
        seen["resent"] = wait.until(EC.presence_of_element_located(
            (By.XPATH, "//span[starts-with(text(), 'Re-sent')]"))).text

        # Recover the last day, with its progress.
        driver.find_element(By.XPATH, "//button[text()='Recover']").click()
        wait.until(lambda d: d.find_element(By.ID, "recovery").text.startswith("done"))
        seen["recovery"] = driver.find_element(By.ID, "recovery").text

        # The signing key: hidden, revealed, rotated.
        seen["keyHidden"] = driver.find_element(By.ID, "signing-key").text
        driver.find_element(By.XPATH, "//button[text()='Reveal']").click()
        wait.until(lambda d: d.find_element(By.ID, "signing-key").text.startswith("whsec_"))
        seen["key"] = driver.find_element(By.ID, "signing-key").text
        driver.find_element(By.XPATH, "//button[text()='Rotate']").click()
        wait.until(lambda d: d.find_element(By.ID, "signing-key").text not in (seen["key"], ""))
        seen["rotatedKey"] = driver.find_element(By.ID, "signing-key").text

        # The test button against an endpoint answering a payload.
        driver.find_element(By.NAME, "testUrl").send_keys(args["xss"])
        driver.find_element(By.XPATH, "//button[text()='Send']").click()
        wait.until(lambda d: "Status" in d.find_element(By.ID, "test-answer").text)
        seen["testAnswer"] = driver.find_element(By.ID, "test-answer").text
        probe(driver, seen, "test answer")

        # The receiver check: this receiver accepts everything, so forged requests fail it.
        driver.find_element(By.ID, "check-endpoint").click()
        wait.until(EC.presence_of_element_located((By.ID, "check-outcome")))
        seen["checkOutcome"] = driver.find_element(By.ID, "check-outcome").text
        seen["checkRows"] = {
            row.get_attribute("data-check"): row.find_elements(By.TAG_NAME, "td")[1].text
            for row in driver.find_elements(By.CSS_SELECTOR, "#check-report tr[data-check]")
        }
        driver.execute_script("document.getElementById('check').scrollIntoView()")
        driver.save_screenshot(f"{shots}/check.png")

        # The health charts.
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#health svg.chart")) >= 3)
        seen["charts"] = len(driver.find_elements(By.CSS_SELECTOR, "#health svg.chart"))
        seen["bars"] = len(driver.find_elements(By.CSS_SELECTOR, "#health svg.chart rect"))
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(f"{shots}/hook.png")
        driver.execute_script("document.getElementById('health').scrollIntoView()")
        driver.save_screenshot(f"{shots}/health.png")

        # Edit: a rate limit and a custom header whose value never reaches the page.
        driver.get(f"{base}/console/#/hooks/{hook_id}/edit")
        wait.until(EC.presence_of_element_located((By.ID, "hook-form")))
        driver.find_element(By.NAME, "rateLimit").send_keys("5")
        driver.find_element(By.XPATH, "//button[text()='+ header']").click()
        driver.find_elements(By.NAME, "headerName")[-1].send_keys("X-Env")
        driver.find_elements(By.NAME, "headerValue")[-1].send_keys(args["headerSecret"])
        driver.save_screenshot(f"{shots}/edit.png")
        driver.find_element(By.CSS_SELECTOR, "#hook-form button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.ID, "hook")))
        seen["hookTable"] = driver.find_element(By.ID, "hook").text
        # Saved again without touching it: the stored value is kept.
        driver.get(f"{base}/console/#/hooks/{hook_id}/edit")
        wait.until(EC.presence_of_element_located((By.ID, "hook-form")))
        seen["editSource"] = args["headerSecret"] in driver.page_source
        driver.find_element(By.CSS_SELECTOR, "#hook-form button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.ID, "hook")))
        seen["pageSource"] = args["headerSecret"] in driver.page_source

        # A page for the README: the hook under a plain name.
        request = urllib.request.Request(f"{base}/api/hooks/{hook_id}", method="PATCH",
                                         data=json.dumps({"name": "CRM sync"}).encode(),
                                         headers={"authorization": f"Bearer {args['admin']}",
                                                  "content-type": "application/json"})
        urllib.request.urlopen(request).close()
        driver.get(f"{base}/console/#/hooks")
        driver.refresh()
        wait.until(EC.presence_of_element_located((By.LINK_TEXT, "CRM sync"))).click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#health svg.chart")) >= 3)
        driver.set_window_size(1280, 1900)
        driver.save_screenshot(f"{shots}/overview.png")

        seen["pwned"] = driver.execute_script("return window.__pwned === undefined ? null : window.__pwned")
        seen["images"] = len(driver.find_elements(By.TAG_NAME, "img"))
        seen["scripts"] = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
        seen["console"] = [entry["message"] for entry in driver.get_log("browser")]
    finally:
        driver.quit()
    print(json.dumps(seen))


def probe(driver, seen, label):
    """Whether a payload just rendered ran or became an element, read before anything else
    happens to the page."""
    seen.setdefault("probes", {})[label] = driver.execute_script(
        "return {pwned: window.__pwned === undefined ? null : window.__pwned,"
        " injected: document.querySelectorAll('img, iframe, object, embed').length"
        " + Array.from(document.scripts).filter(s => !s.src.endsWith('/console/app.js')).length}")


def log_rows(driver):
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#log tbody tr")]


def post(url, token, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"authorization": f"Bearer {token}",
                                              "content-type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 202, answer.status


def delivered(base, token, hook_id):
    request = urllib.request.Request(f"{base}/api/hooks/{hook_id}/recent-logs?page_size=100",
                                     headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as answer:
        return sum(1 for entry in json.loads(answer.read()) if entry["result"] == "Success")


if __name__ == "__main__":
    main()
