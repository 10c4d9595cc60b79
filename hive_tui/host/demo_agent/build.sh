#!/bin/sh
# The demo agents' build: checks the config the way an evaluation would.
set -eu
echo "checking $HIVE_AGENT's config"
for f in status.txt model.txt; do
    if [ ! -s "$f" ]; then
        echo "error: $f is empty: the agent cannot start without it" >&2
        exit 1
    fi
done
echo "model: $(head -n 1 model.txt)"
echo "config ok"
