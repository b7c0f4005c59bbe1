#!/bin/sh
# waits for the minimum's relaxation to converge, then labels it (one core)
while [ ! -f minimum/relaxed.xyz ]; do
  if ! pgrep -f "make_metal relax W" > /dev/null; then echo "relaxation stopped unconverged"; exit 1; fi
  sleep 30
done
PY=../../../.venv/bin/python
$PY -m fieldforce.datasets.make_metal relaxed "W(110)" --minimum minimum --out w_minimum.xyz && \
$PY -m fieldforce.datasets.make_metal label w_minimum.xyz w_minimum_labelled.xyz --kpts 4 4
