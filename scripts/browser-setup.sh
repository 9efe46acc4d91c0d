#!/usr/bin/env bash
# Installs playwright-core 1.49.1 (npm) under DIR for the console's end-to-end test, which
# drives the system's headless Chromium (Debian: apt-get install chromium) with it. Needs node
# (>= 18) and npm. Prints two lines at the end: the directory to pass as
# PROOFMILL_PLAYWRIGHT_DIR, then the Chromium binary for PROOFMILL_CHROMIUM. Idempotent.
#   usage: scripts/browser-setup.sh DIR
set -euo pipefail
dir=$(mkdir -p "${1:?usage: browser-setup.sh DIR}" && cd "$1" && pwd)
command -v node >/dev/null 2>&1 || { echo "browser-setup.sh: node is not on PATH" >&2; exit 1; }
chromium=${PROOFMILL_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "browser-setup.sh: no chromium on PATH (Debian: apt-get install chromium)" >&2; exit 1; }
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  [ -f "$dir/package.json" ] || echo '{ "name": "proofmill-browser", "private": true }' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --silent playwright-core@1.49.1 >&2)
fi
# Fail here, not in the test, when the browser does not start.
(cd "$dir" && PROOFMILL_CHROMIUM="$chromium" node --input-type=module -e '
const { chromium } = await import("playwright-core");
const browser = await chromium.launch({ executablePath: process.env.PROOFMILL_CHROMIUM, args: ["--no-sandbox"] });
const page = await browser.newPage();
await page.setContent("<p id=x>ok</p>");
if ((await page.textContent("#x")) !== "ok") { console.error("chromium did not render a page"); process.exit(1); }
await browser.close();') >&2
echo "$dir"
echo "$chromium"
