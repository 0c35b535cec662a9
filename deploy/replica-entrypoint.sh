#!/bin/sh
# A streaming hot standby of $PRIMARY_HOST. On first start its data folder is empty:
# copy the primary with pg_basebackup -R (which writes standby.signal and primary_conninfo),
# then run as a read-only replica that follows the primary's WAL.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "$PRIMARY_HOST" -U replicator; do
    echo "waiting for the primary at $PRIMARY_HOST"; sleep 1
  done
  rm -rf "$PGDATA"/*
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h "$PRIMARY_HOST" -U replicator \
    -D "$PGDATA" -R -X stream -c fast
  chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on
