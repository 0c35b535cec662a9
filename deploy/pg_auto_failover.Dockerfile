# PostgreSQL 15 with pg_auto_failover (the monitor's extension and pg_autoctl), from the
# PostgreSQL project's Debian packages that the official image already trusts.
FROM postgres:15-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-auto-failover pg-auto-failover-cli \
 && rm -rf /var/lib/apt/lists/*
# pg_autoctl refuses to run as root.
USER postgres
# Its configuration and state live beside the data, in the volume, so they survive a
# re-created container.
ENV PGDATA=/var/lib/postgresql/data/pgaf \
    XDG_CONFIG_HOME=/var/lib/postgresql/data/config \
    XDG_DATA_HOME=/var/lib/postgresql/data/share
ENTRYPOINT []
