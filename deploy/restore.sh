#!/bin/sh
# Restore a backup made by deploy/backup.sh into a fresh deployment, then start it.
#
#   deploy/restore.sh DIR
#
# Run it where compose.yml and .env are, with empty volumes (a new host, or after
# `docker compose down -v`). It starts PostgreSQL and MinIO only, refuses a database that
# already holds tables, restores the dump and copies both buckets back, then brings every
# service up; the API applies any newer migrations at its start. COMPOSE as in backup.sh.
set -eu
dir=${1:?usage: deploy/restore.sh DIR}
compose=${COMPOSE:-docker compose}
dir=$(cd "$dir" && pwd)
[ -s "$dir/orchestrator.dump" ] || { echo "restore.sh: no $dir/orchestrator.dump" >&2; exit 1; }

$compose up -d --wait postgres minio
$compose run --rm --no-deps minio-init >/dev/null  # the buckets

# shellcheck disable=SC2016 # expanded in the container, from its own environment
tables=$($compose exec -T postgres sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc \
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = '"'public'"'"')
if [ "$tables" != 0 ]; then
    echo "restore.sh: the database already holds $tables tables; restore into a fresh deployment" >&2
    exit 1
fi
# shellcheck disable=SC2016
$compose exec -T postgres sh -c \
    'pg_restore -U "$POSTGRES_USER" -d "$POSTGRES_DB" --no-owner --exit-on-error' \
    < "$dir/orchestrator.dump"

# shellcheck disable=SC2016
$compose run --rm --no-deps -v "$dir:/backup:ro" --entrypoint sh minio-init -c '
    set -e
    mc alias set deployed http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
    for bucket in uploads results; do
        if [ -d "/backup/$bucket" ]; then
            mc mirror --overwrite --quiet "/backup/$bucket" "deployed/$bucket"
        fi
    done'

$compose up -d --wait
echo "restore.sh: restored from $dir; every service is up"
