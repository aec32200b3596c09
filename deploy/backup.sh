#!/bin/sh
# Back up a compose deployment, online: PostgreSQL first, then both buckets.
#
#   deploy/backup.sh DIR
#
# Run it where compose.yml and .env are. DIR receives orchestrator.dump (pg_dump, custom
# format) and uploads/ and results/ (mc mirror of the buckets). COMPOSE overrides the compose
# command, e.g. COMPOSE="docker compose -f compose.yml -f deploy/compose.local.yml".
# The database is dumped before the buckets are copied, so every object a dumped row names is
# already there when the mirror runs; objects written meanwhile are only extra. Redis needs no
# backup: PostgreSQL holds every task, and the reconciler enqueues again what is pending.
set -eu
dir=${1:?usage: deploy/backup.sh DIR}
compose=${COMPOSE:-docker compose}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# shellcheck disable=SC2016 # expanded in the container, from its own environment
$compose exec -T postgres sh -c \
    'pg_dump -U "$POSTGRES_USER" -d "$POSTGRES_DB" --format=custom' > "$dir/orchestrator.dump.part"
mv "$dir/orchestrator.dump.part" "$dir/orchestrator.dump"

# mc from the minio-init image, on the compose network: no tool needed on the host.
# shellcheck disable=SC2016
$compose run --rm --no-deps -v "$dir:/backup" --entrypoint sh minio-init -c '
    set -e
    mc alias set deployed http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
    for bucket in uploads results; do
        mc mirror --overwrite --quiet "deployed/$bucket" "/backup/$bucket"
    done'
echo "backup.sh: $dir holds orchestrator.dump, uploads/ and results/"
