"""First-visit load time of a page, as a new visitor gets it: a fresh browser context (empty
cache) per visit, Debian's Chromium driven by Playwright, optionally on a throttled link.

Usage: .venv/bin/python scripts/page_load.py URL [--visits N] [--mbit M] [--chart ID]

Prints the median time to the load event and to the first drawn chart, and how many bytes
plotly.js took on the wire (gzip shows as about 1.5 MB instead of 4.8 MB). A benchmark, not a
test: the figures depend on the machine and the link.
"""

from __future__ import annotations

import argparse
import statistics
import time

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LATENCY_MS = 20  # a nearby server's round trip; only used with --mbit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--mbit", type=float, help="throttle the link to this many Mbit/s")
    parser.add_argument("--chart", default="accuracy-chart", help="the chart to wait for")
    args = parser.parse_args()
    loads, charts, plotly_bytes = [], [], 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=CHROMIUM_ARGS)  # fmt: skip
        for _ in range(args.visits):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            if args.mbit:
                rate = args.mbit * 1e6 / 8  # bytes per second
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.emulateNetworkConditions", {
                    "offline": False, "latency": LATENCY_MS,
                    "downloadThroughput": rate, "uploadThroughput": rate,
                })  # fmt: skip
            start = time.perf_counter()
            page.goto(args.url, wait_until="load")
            loads.append(time.perf_counter() - start)
            page.wait_for_function(f"document.querySelector('#{args.chart} .main-svg') !== null")
            charts.append(time.perf_counter() - start)
            plotly_bytes = page.evaluate(
                "performance.getEntriesByType('resource')"
                ".filter(r => r.name.includes('plotly')).reduce((n, r) => n + r.transferSize, 0)"
            )
            context.close()
        browser.close()
    link = f"{args.mbit:g} Mbit/s" if args.mbit else "unthrottled"
    print(
        f"{args.url} ({link}, {args.visits} first visits): load event median "
        f"{statistics.median(loads):.2f} s, first chart drawn median "
        f"{statistics.median(charts):.2f} s, plotly.js {plotly_bytes:,} bytes on the wire"
    )


if __name__ == "__main__":
    main()
