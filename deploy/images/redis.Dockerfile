# Redis from Debian's packages, standing in for redis:7-bookworm where no registry is reachable
# (the compose test's override). compose.yml starts it with its own command line; /data is the
# working directory, as in the official image, so the AOF lands in the volume.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
