#!/bin/sh
# Entry point of the Dagster containers (code location, webserver, daemon).
# Dagster reads its instance file (deploy/dagster.prod.yaml) itself, and that file can only take
# the Postgres password from the environment (DAGSTER_PG_PASSWORD); compose hands it over as a
# secret file instead (DAGSTER_PG_PASSWORD_FILE). Read the file, like the official images'
# entry points do for their *_FILE variables, then run the container's command. Knowledge
# Plane's own secrets need no such step: its settings read every <VAR>_FILE themselves.
set -eu
if [ -z "${DAGSTER_PG_PASSWORD:-}" ] && [ -n "${DAGSTER_PG_PASSWORD_FILE:-}" ]; then
    if [ ! -r "$DAGSTER_PG_PASSWORD_FILE" ]; then
        echo "DAGSTER_PG_PASSWORD_FILE names a file that cannot be read: $DAGSTER_PG_PASSWORD_FILE" >&2
        exit 1
    fi
    DAGSTER_PG_PASSWORD="$(cat "$DAGSTER_PG_PASSWORD_FILE")"
    export DAGSTER_PG_PASSWORD
fi
exec "$@"
