#!/bin/bash
# The sftp service: the accounts, chroots and folders of accounts.tsv, then sshd on the
# configuration `edihub sftp sshd-config` wrote into $CONF (airflow-init; again after a change
# of the registry). A changed configuration is applied within $POLL seconds: new accounts and
# folders created, sshd reloaded (SIGHUP: it re-reads its files; open sessions go on).
# rsyslog (rsyslog.conf) writes internal-sftp's log for the download audit through a dev/log
# socket in each chroot, listed in $SYSLOG_INPUTS; it restarts to listen on new ones.
set -euo pipefail
# Where airflow-init wrote it: sshd_config names its authorized_keys/ by this absolute path.
CONF=${EDIHUB_SSHD_CONFIG:-/opt/edihub/sshd-config}
# The partners' folders are group-shared with the hub's account (2770).
GROUP=${EDIHUB_SFTP_GROUP:-edihub}
POLL=${EDIHUB_SSHD_POLL_SECONDS:-30}
PORT=${EDIHUB_SSHD_PORT:-22}
listen=()  # every interface, unless told (sshd's ListenAddress)
[ -n "${EDIHUB_SSHD_LISTEN:-}" ] && listen=(-o "ListenAddress=$EDIHUB_SSHD_LISTEN")
HOST_KEY=${EDIHUB_SSHD_HOST_KEY:-/etc/ssh/edihub_host_ed25519_key}
SYSLOG_INPUTS=${EDIHUB_SYSLOG_INPUTS:-/etc/rsyslog.d/chroots.conf}
SYSLOGD=${EDIHUB_SYSLOGD-/usr/sbin/rsyslogd}  # empty: no syslog daemon (the tests)

# sshd refuses a host key others can read; the mounted secret is world-readable.
install -m 600 "${EDIHUB_SSHD_HOST_KEY_SECRET:-/run/secrets/ssh_host_ed25519_key}" "$HOST_KEY"
mkdir -p /run/sshd
getent group "$GROUP" >/dev/null || groupadd "$GROUP"

root_dir() {  # a chroot or a level above a folder: root's, 0755, as sshd demands
  mkdir -p "$1" && chown root:root "$1" && chmod 755 "$1"
}

own_dir() {  # a folder the account writes in (or, for insurers, the hub writes in)
  mkdir -p "$2" && chown "$1:$GROUP" "$2" && chmod 2770 "$2"
}

apply_accounts() {
  : >"$SYSLOG_INPUTS.tmp"
  tail -n +2 "$CONF/accounts.tsv" | while IFS=$'\t' read -r account chroot access folders; do
    id -u "$account" >/dev/null 2>&1 ||
      useradd -M -N -g "$GROUP" -d "$chroot" -s /usr/sbin/nologin -p '*' "$account"
    root_dir "$chroot"
    if [ "$access" = service ]; then
      root_dir "$chroot/partners"
      own_dir "$account" "$chroot/archive"
      continue
    fi
    IFS=, read -ra subs <<<"$folders"
    for sub in "${subs[@]}"; do
      root_dir "$(dirname "$chroot/$sub")"
      own_dir "$account" "$chroot/$sub"
    done
    root_dir "$chroot/dev"
    echo "input(type=\"imuxsock\" Socket=\"$chroot/dev/log\")" >>"$SYSLOG_INPUTS.tmp"
  done
  mv "$SYSLOG_INPUTS.tmp" "$SYSLOG_INPUTS"
}

syslogd=
start_syslog() {
  [ -n "$SYSLOGD" ] || return 0
  if [ -n "$syslogd" ]; then kill -TERM "$syslogd"; wait "$syslogd" || true; fi
  rm -f /run/rsyslogd.pid
  "$SYSLOGD" -n &
  syslogd=$!
}

fingerprint() { cat "$CONF/sshd_config" "$CONF/accounts.tsv" | sha256sum; }

until [ -f "$CONF/sshd_config" ] && [ -f "$CONF/accounts.tsv" ]; do sleep 2; done
apply_accounts
start_syslog
seen=$(fingerprint)
sshd_args=(-f "$CONF/sshd_config" -h "$HOST_KEY" -p "$PORT" "${listen[@]}")
/usr/sbin/sshd -t "${sshd_args[@]}"
/usr/sbin/sshd -D -e "${sshd_args[@]}" &
sshd=$!
# docker stop: sshd and rsyslog stopped, an orderly end.
trap 'kill -TERM "$sshd" $syslogd 2>/dev/null; wait; exit 0' TERM INT
while kill -0 "$sshd" 2>/dev/null; do
  sleep "$POLL" & wait $! || true
  now=$(fingerprint)
  # A configuration sshd refuses is not applied: the running one goes on serving.
  if [ "$now" != "$seen" ] && /usr/sbin/sshd -t "${sshd_args[@]}"; then
    apply_accounts
    start_syslog
    kill -HUP "$sshd"
    seen=$now
  fi
done
wait "$sshd"  # sshd ended by itself: its status (compose restarts the service)
