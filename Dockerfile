# The operator's image: one static binary on an empty base, run as a non-root UID.
# It builds with no registry and no base image to pull. `make image` builds the binary first
# (`make static`: glibc, fully static, checked to need no shared library), stages it with LICENSE
# and this file in a small build context (.ci/build-image.sh), and builds with buildah where no
# Docker engine runs (our CI) or with docker where one does.
# Nothing in the image is written to at run time; the chart mounts the root file system read-only.
FROM scratch
LABEL org.opencontainers.image.title="dataminer-keys-operator" \
      org.opencontainers.image.source="https://github.com/dataminer-keys-operator/dataminer-keys-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY LICENSE /usr/share/doc/dataminer-keys-operator/LICENSE
COPY dataminer-keys-operator /usr/local/bin/dataminer-keys-operator
# Numeric, so a runtime can check runAsNonRoot without an /etc/passwd (the chart sets the same).
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dataminer-keys-operator"]
