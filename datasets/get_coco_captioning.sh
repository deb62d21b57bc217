#!/usr/bin/env bash
# Download CS231n's COCO 2014 captioning data (about 1 GB) into datasets/coco_captioning.
# Safe to re-run: it does nothing when the data is already there and resumes a partial download.
set -euo pipefail

URL="http://cs231n.stanford.edu/coco_captioning.zip"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEST="${HERE}/coco_captioning"
ZIP="${HERE}/coco_captioning.zip"

if [ -f "${DEST}/coco2014_captions.h5" ] && [ -f "${DEST}/coco2014_vocab.json" ]; then
    echo "COCO captioning data already in ${DEST}"
    exit 0
fi

if command -v wget >/dev/null 2>&1; then
    wget --continue --output-document="${ZIP}" "${URL}"
elif command -v curl >/dev/null 2>&1; then
    curl --fail --location --continue-at - --output "${ZIP}" "${URL}"
else
    echo "error: need wget or curl to download ${URL}" >&2
    exit 1
fi

# Unzip into a temporary folder and move it into place, so an interrupted unzip leaves nothing half-done.
TMP="$(mktemp -d "${HERE}/.coco_captioning.XXXXXX")"
trap 'rm -rf "${TMP}"' EXIT
unzip -q "${ZIP}" -d "${TMP}"
if [ -d "${TMP}/coco_captioning" ]; then SRC="${TMP}/coco_captioning"; else SRC="${TMP}"; fi
rm -rf "${DEST}"
mv "${SRC}" "${DEST}"
rm -f "${ZIP}"
echo "COCO captioning data in ${DEST}"
