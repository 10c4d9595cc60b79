#!/bin/sh
# A demo agent: reports the status and model its config names, then idles
# until its state folder goes away.
set -eu
sh status.sh
echo "$HIVE_AGENT up: $(head -n 1 status.txt) ($(head -n 1 model.txt))"
while [ -d "$HIVE_AGENT_STATE" ]; do sleep 5; done
