#!/usr/bin/env bash
# Installs the Debian 12 packages Vigil needs to build, test and train, when any is missing.
set -euo pipefail
PACKAGES=(
  cmake g++ make pkg-config git ca-certificates
  libopencv-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtesseract-dev tesseract-ocr-eng
  libsqlite3-dev libssl-dev libcpp-httplib-dev tzdata
  libpq-dev postgresql
  chromium chromium-driver python3-selenium
  dpkg-dev fakeroot file debootstrap
  python3 python3-torch python3-opencv python3-numpy python3-pil python3-onnx
  fonts-dejavu-core fonts-liberation2
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "vigil: installing ${#missing[@]} Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
