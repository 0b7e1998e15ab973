#!/usr/bin/env bash
# The Debian packages the tests use, installed when missing (as root, or with
# sudo): ffmpeg and libsndfile decode and encode audio (the worker's image has
# them too), espeak-ng speaks test speech with known word timings, and the
# DejaVu fonts let ffmpeg's ass filter render subtitles.
set -euo pipefail
packages=(ffmpeg libsndfile1 espeak-ng libespeak-ng1 fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
install() { $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; }
install || { $sudo apt-get update -q && install; }
