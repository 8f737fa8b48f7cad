#!/bin/sh
# llmesh offline installer: run from an extracted package, needs no network at all.
#
#   sudo ./install.sh [--fleet <dir>] [--seed] [--invite <file>] [--root <dir>] [--no-start]
#   sudo ./install.sh --uninstall [--purge] [--root <dir>]
#
# Installs the package into /opt/llmesh/<version> and points /opt/llmesh/current at it (the
# version it replaces stays as /opt/llmesh/previous; older ones are removed), links
# /usr/local/bin/llmesh, creates the system user llmesh, /etc/llmesh (the fleet's trust root and
# join secret; the operator key only with --seed), /var/lib/llmesh (data), installs the systemd
# units and enables llmesh-node.service (llmesh-seed.service with --seed). Re-running it with a
# newer package upgrades in place and restarts the service; the config and data are kept.
#
# The daemon's settings are /etc/llmesh/llmesh.yaml (keys: docs/config.md), written once and never
# overwritten: the one of a device directory made by `llmesh fleet export`, else a commented template.
#
#   --fleet <dir>    copy trust-root.json and swarm.key from this fleet directory to /etc/llmesh; from
#                    a device directory (`llmesh fleet export --device <dir>`) also its invite and llmesh.yaml
#   --seed           this machine is the seed: also copy operator.key, enable llmesh-seed.service
#   --invite <file>  copy an invite (`llmesh device invite`) to /etc/llmesh/invite; llmesh.yaml points at it
#   --root <dir>     install under <dir> as if it were / (image builds, tests): no systemctl, no
#                    useradd; the user is appended to <dir>/etc/passwd when that file exists
#   --no-start       enable the service but do not start or restart it
#   --uninstall      remove llmesh (units, /opt/llmesh, /etc/llmesh, the command), keep the data
#   --purge          with --uninstall: also remove /var/lib/llmesh* and the user
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }
note() { echo "install.sh: $*"; }

PKG_DIR=$(cd "$(dirname "$0")" && pwd -P)
ROOT="" FLEET="" INVITE="" SEED=0 UNINSTALL=0 PURGE=0 START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --fleet) [ $# -ge 2 ] || die "--fleet needs a directory"; FLEET=$2; shift 2 ;;
    --invite) [ $# -ge 2 ] || die "--invite needs a file"; INVITE=$2; shift 2 ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$(cd "$2" && pwd -P) || die "no directory $2"; shift 2 ;;
    --seed) SEED=1; shift ;;
    --no-start) START=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
if [ "$ROOT" = "/" ]; then ROOT=""; fi
[ -n "$ROOT" ] || [ "$(id -u)" = 0 ] || die "run as root (sudo), or with --root <dir>"
[ $PURGE = 0 ] || [ $UNINSTALL = 1 ] || die "--purge goes with --uninstall"

OPT=$ROOT/opt/llmesh ETC=$ROOT/etc/llmesh UNITS=$ROOT/etc/systemd/system BIN=$ROOT/usr/local/bin/llmesh
SYSTEMD=0
if [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then SYSTEMD=1; fi

# --- the user -----------------------------------------------------------------------------------
USER_IDS="" # uid:gid when known (chown), empty when the user could not be made
free_id() { # first id from 999 down to 100 unused in field 3 of file $1
  id=999
  while [ $id -ge 100 ]; do
    cut -d: -f3 "$1" | grep -qx "$id" || { echo $id; return 0; }
    id=$((id - 1))
  done
  return 1
}
ensure_user() {
  if [ -z "$ROOT" ]; then
    if ! getent passwd llmesh >/dev/null; then
      if command -v useradd >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/llmesh --no-create-home \
          --shell /usr/sbin/nologin --comment "llmesh daemon" llmesh
      else
        adduser --system --group --home /var/lib/llmesh --no-create-home --shell /usr/sbin/nologin llmesh
      fi
      note "created the system user llmesh"
    fi
    USER_IDS="$(id -u llmesh):$(id -g llmesh)"
    return 0
  fi
  if [ ! -f "$ROOT/etc/passwd" ] || [ ! -f "$ROOT/etc/group" ]; then
    note "no $ROOT/etc/passwd and group: user llmesh not created (create it in the image: useradd --system --user-group llmesh)"
    return 0
  fi
  if ! grep -q '^llmesh:' "$ROOT/etc/passwd"; then
    uid=$(free_id "$ROOT/etc/passwd") || die "no free system uid in $ROOT/etc/passwd"
    gid=$(grep '^llmesh:' "$ROOT/etc/group" | cut -d: -f3)
    if [ -z "$gid" ]; then
      gid=$(free_id "$ROOT/etc/group") || die "no free system gid in $ROOT/etc/group"
      echo "llmesh:x:$gid:" >> "$ROOT/etc/group"
    fi
    echo "llmesh:x:$uid:$gid:llmesh daemon:/var/lib/llmesh:/usr/sbin/nologin" >> "$ROOT/etc/passwd"
    if [ -f "$ROOT/etc/shadow" ]; then echo "llmesh:!*:1::::::" >> "$ROOT/etc/shadow"; fi
    note "added the user llmesh ($uid:$gid) to $ROOT/etc/passwd"
  fi
  USER_IDS="$(grep '^llmesh:' "$ROOT/etc/passwd" | cut -d: -f3,4)"
}
own() { # own <owner: root|llmesh> <mode> <path>...
  who=$1 mode=$2; shift 2
  chmod "$mode" "$@"
  [ "$(id -u)" = 0 ] && [ -n "$USER_IDS" ] || return 0
  if [ "$who" = root ]; then chown "0:${USER_IDS#*:}" "$@"; else chown "$USER_IDS" "$@"; fi
}

# --- uninstall ----------------------------------------------------------------------------------
if [ $UNINSTALL = 1 ]; then
  if [ $SYSTEMD = 1 ]; then systemctl disable --now llmesh-node.service llmesh-seed.service 2>/dev/null || true; fi
  rm -f "$UNITS/llmesh-node.service" "$UNITS/llmesh-seed.service" \
    "$UNITS/multi-user.target.wants/llmesh-node.service" "$UNITS/multi-user.target.wants/llmesh-seed.service"
  if [ $SYSTEMD = 1 ]; then systemctl daemon-reload; fi
  if [ -L "$BIN" ]; then rm -f "$BIN"; fi
  rm -rf "$OPT" "$ETC"
  if [ $PURGE = 1 ]; then
    rm -rf "$ROOT/var/lib/llmesh" "$ROOT/var/lib/llmesh-seed"
    if [ -z "$ROOT" ]; then
      if getent passwd llmesh >/dev/null; then userdel llmesh; fi
    else
      for f in passwd group shadow; do
        if [ -f "$ROOT/etc/$f" ]; then sed -i '/^llmesh:/d' "$ROOT/etc/$f"; fi
      done
    fi
    note "removed llmesh, its data and its user"
  else
    note "removed llmesh; kept $ROOT/var/lib/llmesh* and the user llmesh (--uninstall --purge removes them)"
  fi
  exit 0
fi

# --- install ------------------------------------------------------------------------------------
[ -f "$PKG_DIR/MANIFEST.json" ] || die "run install.sh from an extracted llmesh package (no MANIFEST.json)"
VERSION=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$PKG_DIR/MANIFEST.json")
ARCH=$(sed -n 's/^  "arch": "\([^"]*\)",$/\1/p' "$PKG_DIR/MANIFEST.json")
case "$VERSION" in ''|*/*|.*) die "bad version in MANIFEST.json" ;; esac
case "$(uname -m)" in x86_64) HOST=x64 ;; aarch64|arm64) HOST=arm64 ;; *) HOST=$(uname -m) ;; esac
if [ "$ARCH" != "$HOST" ]; then
  [ -n "$ROOT" ] || die "this package is for $ARCH, this machine is $HOST"
  note "installing a $ARCH package on $HOST under $ROOT (an image for another machine)"
fi
if [ -n "$FLEET" ]; then
  for f in trust-root.json swarm.key; do [ -f "$FLEET/$f" ] || die "$FLEET has no $f (not a fleet directory)"; done
  [ $SEED = 0 ] || [ -f "$FLEET/operator.key" ] || die "--seed needs $FLEET/operator.key"
fi
[ -z "$INVITE" ] || [ -f "$INVITE" ] || die "no invite file $INVITE"
# shared libraries the bundled native modules need beyond glibc (the package brings everything else)
LIBS="libstdc++.so.6 libgcc_s.so.1 libatomic.so.1"
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
if [ -z "$ROOT" ] && [ -x "$LDCONFIG" ]; then
  missing=""
  for lib in $LIBS; do
    "$LDCONFIG" -p | grep -q "^[[:space:]]*$lib " || missing="$missing $lib"
  done
  [ -z "$missing" ] || die "missing shared libraries:$missing (Debian packages libstdc++6 libgcc-s1 libatomic1: copy their .deb files to the device and dpkg -i them)"
fi

ensure_user

# the package: copied beside the others, then `current` switched by an atomic rename
mkdir -p "$OPT"
DEST=$OPT/$VERSION
if [ "$PKG_DIR" != "$(cd "$DEST" 2>/dev/null && pwd -P)" ]; then
  TMP=$OPT/.$VERSION.new.$$
  rm -rf "$TMP"
  cp -R "$PKG_DIR" "$TMP"
  if [ "$(id -u)" = 0 ]; then chown -R 0:0 "$TMP"; fi
  chmod -R go-w "$TMP"
  if [ -e "$DEST" ]; then mv "$DEST" "$OPT/.$VERSION.old.$$"; fi
  mv "$TMP" "$DEST"
  rm -rf "$OPT/.$VERSION.old.$$"
fi
OLD=$(readlink "$OPT/current" 2>/dev/null || true)
if [ -n "$OLD" ] && [ "$OLD" != "$VERSION" ] && [ -d "$OPT/$OLD" ]; then
  ln -sfn "$OLD" "$OPT/.previous.$$" && mv -Tf "$OPT/.previous.$$" "$OPT/previous"
fi
ln -sfn "$VERSION" "$OPT/.current.$$" && mv -Tf "$OPT/.current.$$" "$OPT/current"
# the agent root itself is the daemon's: agent releases are unpacked and switched to here (the
# versions installed by this script stay root's, read-only to it)
own llmesh 0755 "$OPT"
PREV=$(readlink "$OPT/previous" 2>/dev/null || true)
for d in "$OPT"/*; do
  n=${d##*/}
  if [ -d "$d" ] && [ ! -L "$d" ] && [ "$n" != "$VERSION" ] && [ "$n" != "$PREV" ]; then rm -rf "$d"; fi
done
mkdir -p "$(dirname "$BIN")"
ln -sfn ../../../opt/llmesh/current/bin/llmesh "$BIN"

# configuration: the fleet's public trust root and join secret; the operator key only on the seed
mkdir -p "$ETC"
own root 0750 "$ETC"
if [ -n "$FLEET" ]; then
  cp "$FLEET/trust-root.json" "$ETC/trust-root.json" && own root 0644 "$ETC/trust-root.json"
  cp "$FLEET/swarm.key" "$ETC/swarm.key" && own root 0640 "$ETC/swarm.key"
  if [ $SEED = 1 ]; then cp "$FLEET/operator.key" "$ETC/operator.key" && own root 0640 "$ETC/operator.key"; fi
fi
[ $SEED = 1 ] || [ ! -f "$ETC/operator.key" ] || note "$ETC/operator.key is left from a seed install: remove it unless this is the seed"
# an exported device directory brings its invite and settings (a seed keeps its own settings)
if [ -z "$INVITE" ] && [ -n "$FLEET" ] && [ $SEED = 0 ] && [ -f "$FLEET/invite" ]; then INVITE=$FLEET/invite; fi
if [ -n "$INVITE" ]; then cp "$INVITE" "$ETC/invite" && own root 0640 "$ETC/invite"; fi
CONF=$ETC/llmesh.yaml
if [ ! -f "$CONF" ]; then
  if [ -n "$FLEET" ] && [ $SEED = 0 ] && [ -f "$FLEET/llmesh.yaml" ]; then
    cp "$FLEET/llmesh.yaml" "$CONF"
  else
    cat > "$CONF" <<'EOF'
# /etc/llmesh/llmesh.yaml: settings of llmesh-node.service and llmesh-seed.service. Every key, its
# LLMESH_* variable and default: docs/config.md; the values in force: `llmesh config print --config
# /etc/llmesh/llmesh.yaml`. install.sh writes this file once and never overwrites it; after an edit:
# systemctl restart llmesh-node (or llmesh-seed). Relative paths are taken from this directory.
fleet: .
# name: till-12          # default: the host name
# tags: [pilot, shop-12]
# api: 127.0.0.1:7420
# inference_concurrency: 2
# inference_queue: 16
# keep_versions: 3
EOF
    [ -z "$INVITE" ] || echo "invite: invite" >> "$CONF"
  fi
elif [ -n "$INVITE" ] && ! grep -q '^invite:' "$CONF"; then
  echo "invite: invite" >> "$CONF"
  note "$CONF now names the invite"
fi
own root 0640 "$CONF"
for f in node.env seed.env; do
  [ -f "$ETC/$f" ] || { cp "$DEST/systemd/$f" "$ETC/$f" && own root 0640 "$ETC/$f"; }
  if grep -Eq "^LLMESH_(NODE|SEED)_ARGS=[\"']?[^\"' ]" "$ETC/$f"; then
    note "$ETC/$f sets LLMESH_NODE_ARGS/LLMESH_SEED_ARGS, which the units no longer read: move those settings to $CONF"
  fi
done

# data
DATA=$ROOT/var/lib/llmesh
[ $SEED = 0 ] || DATA=$ROOT/var/lib/llmesh-seed
mkdir -p "$DATA"
own llmesh 0700 "$DATA"

# services
UNIT=llmesh-node.service OTHER=llmesh-seed.service
if [ $SEED = 1 ]; then UNIT=llmesh-seed.service OTHER=llmesh-node.service; fi
mkdir -p "$UNITS/multi-user.target.wants"
for u in llmesh-node.service llmesh-seed.service; do
  cp "$DEST/systemd/$u" "$UNITS/$u" && chmod 0644 "$UNITS/$u"
done
CMD="llmesh $([ $SEED = 1 ] && echo seed || echo node) start --config /etc/llmesh/llmesh.yaml --data ${DATA#"$ROOT"}"
# one role per machine: both daemons default to the same API port
if [ -L "$UNITS/multi-user.target.wants/$OTHER" ]; then
  if [ $SYSTEMD = 1 ]; then systemctl disable --now "$OTHER" >/dev/null 2>&1 || true; fi
  rm -f "$UNITS/multi-user.target.wants/$OTHER"
  note "disabled $OTHER (this machine now runs $UNIT)"
fi
if [ -n "$ROOT" ]; then
  ln -sfn "/etc/systemd/system/$UNIT" "$UNITS/multi-user.target.wants/$UNIT"
  note "installed llmesh $VERSION ($ARCH) under $ROOT; $UNIT is enabled there"
elif [ $SYSTEMD = 1 ]; then
  systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null
  if [ ! -f "$ETC/trust-root.json" ] || [ ! -f "$ETC/swarm.key" ]; then
    note "installed llmesh $VERSION; $UNIT is enabled but needs a fleet: re-run with --fleet <dir>"
  elif [ $START = 1 ]; then
    systemctl restart "$UNIT"
    note "installed llmesh $VERSION; $UNIT is running (journalctl -u $UNIT)"
  else
    note "installed llmesh $VERSION; start it with: systemctl start $UNIT"
  fi
else
  note "installed llmesh $VERSION; systemd is not running here: start the daemon with"
  note "  runuser -u llmesh -- $CMD"
fi
