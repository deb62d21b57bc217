#!/usr/bin/env bash
# Download CS231n's COCO 2014 captioning data (about 1 GB) into coco_captioning/ next to this
# script, where cs231n.coco_utils.load_coco_data() finds it. Written by `captionrnn cs231n-package`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${HERE}"
if [ -f coco_captioning/coco2014_captions.h5 ] && [ -f coco_captioning/coco2014_vocab.json ]; then
    echo "COCO captioning data already in ${HERE}/coco_captioning"
    exit 0
fi
URL="http://cs231n.stanford.edu/coco_captioning.zip"
if command -v wget >/dev/null 2>&1; then
    wget --continue --output-document=coco_captioning.zip "${URL}"
else
    curl --fail --location --continue-at - --output coco_captioning.zip "${URL}"
fi
TMP="$(mktemp -d "${HERE}/.coco_captioning.XXXXXX")"
trap 'rm -rf "${TMP}"' EXIT
unzip -q coco_captioning.zip -d "${TMP}"
if [ -d "${TMP}/coco_captioning" ]; then SRC="${TMP}/coco_captioning"; else SRC="${TMP}"; fi
rm -rf coco_captioning
mv "${SRC}" coco_captioning
rm -f coco_captioning.zip
echo "COCO captioning data in ${HERE}/coco_captioning"
