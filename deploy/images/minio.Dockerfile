# MinIO and mc built from their Go modules (pins in scripts/pins.env): one image for compose's
# minio service (healthcheck `mc ready local`) and its one-shot minio-init (`mc mb`).
FROM debian:bookworm-slim
COPY minio mc /usr/local/bin/
EXPOSE 9000 9001
ENTRYPOINT ["minio"]
