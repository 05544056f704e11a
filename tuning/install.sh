#!/bin/sh
# Installs mediarelay like `make install`: the release binary, the example
# config file, the sysctls, the systemd unit and its documentation.
#
#   cargo build --release && sudo tuning/install.sh
#   DESTDIR=/tmp/stage PREFIX=/usr tuning/install.sh      # staged (packaging)
#
# Variables (make's names):
#   PREFIX      /usr/local             the binary goes to $PREFIX/bin
#   DESTDIR     (empty)                prepended to every path (staging)
#   BINDIR      $PREFIX/bin
#   DOCDIR      $PREFIX/share/doc/mediarelay
#   SYSCONFDIR  /etc                   mediarelay/mediarelay.toml, sysctl.d/
#   UNITDIR     $SYSCONFDIR/systemd/system
#   BIN         target/release/mediarelay (of this checkout)
#   FORCE       1: overwrite config files that differ from the shipped ones
#
# Idempotent: running it again replaces the binary and the docs, and leaves
# the config files (mediarelay.toml, 99-mediarelay.conf, mediarelay.service)
# alone when they exist and differ, i.e. were edited (FORCE=1 replaces them).
# The unit's ExecStart, Documentation and --config paths are rewritten to
# BINDIR, DOCDIR and SYSCONFDIR. Without DESTDIR, as root, it also creates
# the system user `mediarelay` and runs `systemctl daemon-reload`; it never
# enables or starts the service, nor applies the sysctls.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-$PREFIX/bin}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/mediarelay}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$SYSCONFDIR/systemd/system}
BIN=${BIN:-$here/../target/release/mediarelay}
FORCE=${FORCE:-0}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

for d in "$PREFIX" "$BINDIR" "$DOCDIR" "$SYSCONFDIR" "$UNITDIR"; do
    case $d in
    /*) ;;
    *) die "$d: install paths must be absolute" ;;
    esac
    case $d in
    *'|'* | *'&'* | *'\'*) die "$d: '|', '&' and '\\' are not supported in paths" ;;
    esac
done
[ -x "$BIN" ] || die "$BIN is not an executable: run 'cargo build --release' first, or set BIN="

# put SRC DST MODE: installs SRC as DST, replacing it atomically.
put() {
    mkdir -p "$(dirname -- "$2")"
    tmp="$2.install.$$"
    cp -- "$1" "$tmp"
    chmod "$3" "$tmp"
    mv -f -- "$tmp" "$2"
}

# put_config SRC DST MODE: as put, but keeps an existing DST that differs
# (an operator's edits) unless FORCE=1.
put_config() {
    if [ ! -e "$2" ]; then
        put "$@"
        echo "installed $2"
    elif cmp -s -- "$1" "$2"; then
        echo "unchanged $2"
    elif [ "$FORCE" = 1 ]; then
        put "$@"
        echo "replaced  $2 (FORCE=1)"
    else
        echo "kept      $2 (differs from the shipped one: edited, or another PREFIX; FORCE=1 replaces it)"
    fi
}

put "$BIN" "$DESTDIR$BINDIR/mediarelay" 0755
echo "installed $DESTDIR$BINDIR/mediarelay"
put "$here/README.md" "$DESTDIR$DOCDIR/tuning/README.md" 0644
put_config "$here/mediarelay.toml" "$DESTDIR$SYSCONFDIR/mediarelay/mediarelay.toml" 0644
put_config "$here/99-mediarelay.conf" "$DESTDIR$SYSCONFDIR/sysctl.d/99-mediarelay.conf" 0644

unit=$(mktemp)
trap 'rm -f "$unit"' EXIT
sed -e "s|/usr/local/bin/mediarelay|$BINDIR/mediarelay|g" \
    -e "s|/usr/local/share/doc/mediarelay|$DOCDIR|g" \
    -e "s|/etc/mediarelay/|$SYSCONFDIR/mediarelay/|g" \
    "$here/mediarelay.service" >"$unit"
put_config "$unit" "$DESTDIR$UNITDIR/mediarelay.service" 0644

if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ]; then
    if ! id mediarelay >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin mediarelay
        echo "created system user mediarelay"
    fi
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl daemon-reload
    fi
fi

cat <<EOF
Next: set --interface (and the ports, --num-threads, CPUAffinity=) in
$UNITDIR/mediarelay.service (its flags override $SYSCONFDIR/mediarelay/mediarelay.toml), then
  sysctl --system && systemctl enable --now mediarelay
EOF
