#!/usr/bin/env bash
# Headless Chromium, ChromeDriver and a Chinese font for the auditor-page browser test (Debian packages).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && fc-list 2>/dev/null | grep -qi microhei; then
  exit 0
fi
echo "installing chromium, chromium-driver and a CJK font from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null
