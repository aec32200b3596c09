# tusd built from its Go module by scripts/install.sh (pin in scripts/pins.env), standing in for
# tusproject/tusd where no registry is reachable. wget: compose.yml's healthcheck uses it, as the
# official (busybox-based) image has it.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/*
COPY tusd /usr/local/bin/tusd
USER 10001
EXPOSE 8080
ENTRYPOINT ["tusd"]
