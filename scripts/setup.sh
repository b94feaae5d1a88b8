#!/usr/bin/env bash
# Install cxrneo and its tools on a fresh machine: Java 17 + Maven (for the local Neo4j), headless
# Chromium + chromedriver (the viewer's browser tests), Orthanc + its DICOMweb plugin (a real PACS
# for the DICOMweb tests), rsyslog (the audit trail's syslog tests), Prometheus (the metrics scrape
# test), a venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# headless Chromium and its driver: the viewer's browser tests (Selenium drives the system browser)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# a real PACS for the DICOMweb tests: Orthanc and its DICOMweb plugin (never started as a service)
{ command -v Orthanc || [ -x /usr/sbin/Orthanc ]; } >/dev/null 2>&1 || need_apt+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need_apt+=(orthanc-dicomweb)
# a real Prometheus for the metrics test (started by the test on loopback, never as a service)
{ command -v prometheus || [ -x /usr/bin/prometheus ]; } >/dev/null 2>&1 || need_apt+=(prometheus)
# a real syslog server for the audit trail's syslog tests (each test runs its own rsyslogd)
{ command -v rsyslogd || [ -x /usr/sbin/rsyslogd ]; } >/dev/null 2>&1 || need_apt+=(rsyslog)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"cxrneo needs Python >= 3.11, found {sys.version.split()[0]}")
PY

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# A machine without an NVIDIA GPU can skip the CUDA libraries (about 3 GB of the 5.9 GB venv):
# CXRNEO_TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the pinned torch and
# torchvision from PyTorch's CPU-only wheel index first; pip then keeps them.
if [ -n "${CXRNEO_TORCH_INDEX:-}" ]; then
  pins=$(grep -oE '"torch(vision)?==[^"]+"' pyproject.toml | tr -d '"')
  echo "installing $(echo $pins) from $CXRNEO_TORCH_INDEX"
  .venv/bin/python -m pip install -q --index-url "$CXRNEO_TORCH_INDEX" $pins
fi
.venv/bin/python -m pip install -q -e '.[dev]'
echo "cxrneo installed in $(pwd)/.venv"
