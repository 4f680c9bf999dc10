#!/bin/sh
# The scheduler service: say what will run and when, then hand over to yacron (which logs each
# job's output and exit code). Without this line `docker compose logs -f scheduler` stays empty
# until the first job fires, which looks like a dead container.
set -eu
CONFIG=${VOLF_SCHEDULER_CONFIG:-/etc/volforecast/yacron.yml}
YACRON=${VOLF_YACRON:-/opt/cron/bin/yacron}
echo "volforecast scheduler starting $(date -u +%Y-%m-%dT%H:%M:%SZ); jobs (cron syntax, America/New_York):"
awk '/^  - name:/ {name = $3} /^    schedule:/ {sub(/^    schedule: */, ""); print "  " name ": " $0}' "$CONFIG"
exec "$YACRON" -c "$CONFIG"
