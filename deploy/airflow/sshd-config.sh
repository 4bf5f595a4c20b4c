#!/bin/bash
# The partners' OpenSSH configuration from the registry, into the volume the sftp service
# reads (it applies a change within 30 s). Run by airflow-init, and after a registry change:
#   docker compose run --rm --user 0:0 airflow-cli /opt/edihub/deploy/sshd-config.sh
# As root: sshd accepts key files only from root or their account.
set -euo pipefail
# The hub's public key, from the private key mounted as a secret.
python - /run/secrets/hub_ed25519 > /tmp/hub_ed25519.pub <<'PY'
import sys
from cryptography.hazmat.primitives import serialization as s
key = s.load_ssh_private_key(open(sys.argv[1], "rb").read(), password=None)
print(key.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH).decode(), "hub")
PY
python -m edihub.cli sftp sshd-config --out /opt/edihub/sshd-config --root /srv/sftp \
  --service-account hub --service-key /tmp/hub_ed25519.pub
