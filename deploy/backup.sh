#!/usr/bin/env bash
# deploy/backup.sh: back up and restore a timebank deployment (SQLite or PostgreSQL), and
# archive the signing keys, always separately from the database.
#
# Usage (see usage() below, or run with no arguments):
#   backup.sh sqlite           DB_FILE   OUT_DIR     online, consistent copy of a SQLite file
#   backup.sh postgres         DB_URL    OUT_DIR     pg_dump --format=custom
#   backup.sh keys             KEY_DIR   OUT_DIR     tar of the key directory (mode 0600)
#   backup.sh restore-sqlite   BACKUP    DB_FILE     into a new file, then timebank verify
#   backup.sh restore-postgres DUMP      DB_URL      into an EMPTY database, then timebank verify
#
# Why these tools:
#   - SQLite runs in WAL mode; copying the .db file with cp while the service writes can give
#     a torn copy (and misses what is still in the -wal file). `sqlite3 DB ".backup OUT"` uses
#     SQLite's online backup API: a consistent snapshot, the service keeps running.
#   - PostgreSQL: pg_dump takes one consistent snapshot while the service runs; the custom
#     format is compressed and restored with pg_restore (in one transaction, here).
#   - The keys: private keys never enter the database, so a stolen database cannot forge
#     entries. A backup that holds both would undo that: the keys go to a separate archive,
#     which this script refuses to write into the database backups' directory. Send it to a
#     different, more restricted destination (and encrypt it, e.g. `age -r ...` or gpg).
#   - A restored database must pass `timebank verify` (every hash, signature, balance and
#     checkpoint) before it goes live; the restore commands run it and fail if it fails.
#
# Run it as the service user so files keep the right owner, e.g. from a systemd timer or:
#   sudo -u timebank /opt/timebank/deploy/backup.sh sqlite /var/lib/timebank/timebank.db /var/backups/timebank/db
#   sudo -u timebank /opt/timebank/deploy/backup.sh keys /var/lib/timebank/keys /var/backups/timebank-keys
# For PostgreSQL, DB_URL is the service's SQLAlchemy URL (postgresql+asyncpg://...) or a plain
# libpq URL (postgresql://...); the client tools get the libpq form. Passwords: prefer
# ~/.pgpass or peer authentication over a password in the URL (it would show in `ps`).
# pg_dump/pg_restore must be at least as new as the server (15).
#
# Environment:
#   TIMEBANK           the timebank command (default /opt/timebank/.venv/bin/timebank, else
#                      `timebank` on PATH)
#   BACKUP_KEEP_DAYS   if set, delete this script's backups older than that many days from
#                      OUT_DIR after a successful backup
#
# Exit status: 0 done; 1 a step failed (nothing half-written is left under the final name);
# 2 bad usage. Checked on a development machine with `bash -n`, and run there: every SQLite
# path on a copy of the demo database, and the PostgreSQL backup and restore against a
# throw-away PostgreSQL 15 cluster (scripts/postgres).

set -euo pipefail
umask 077

PROG=$(basename "$0")

usage() {
    cat <<USAGE
usage:
  $PROG sqlite           DB_FILE   OUT_DIR   back up a SQLite database (online, WAL-safe)
  $PROG postgres         DB_URL    OUT_DIR   back up a PostgreSQL database (pg_dump -Fc)
  $PROG keys             KEY_DIR   OUT_DIR   archive the signing keys (keep apart from the db)
  $PROG restore-sqlite   BACKUP    DB_FILE   restore a SQLite backup to a new file, verify it
  $PROG restore-postgres DUMP      DB_URL    restore a dump into an empty database, verify it

Backups are named timebank-<kind>-<UTC time>.<ext> in OUT_DIR. Restores never overwrite:
DB_FILE must not exist, the target PostgreSQL database must have no tables. Stop the service
first, restore, check that \`timebank verify\` passed, then point the service at it.
Environment: TIMEBANK (the timebank command), BACKUP_KEEP_DAYS (prune older backups).
USAGE
}

die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

timebank_cmd() {
    if [[ -n "${TIMEBANK:-}" ]]; then
        echo "$TIMEBANK"
    elif [[ -x /opt/timebank/.venv/bin/timebank ]]; then
        echo /opt/timebank/.venv/bin/timebank
    elif command -v timebank > /dev/null; then
        command -v timebank
    else
        die "no timebank command found (set TIMEBANK=/path/to/timebank)"
    fi
}

need() { command -v "$1" > /dev/null || die "$1 is not installed"; }

stamp() { date -u +%Y%m%dT%H%M%SZ; }

# The libpq form of a SQLAlchemy URL: postgresql+asyncpg:// -> postgresql://
libpq_url() {
    local url=$1
    case "$url" in
        postgresql+*://*) echo "postgresql://${url#*://}" ;;
        postgresql://* | postgres://*) echo "$url" ;;
        *) die "not a PostgreSQL URL: $url" ;;
    esac
}

# The SQLAlchemy form timebank expects: postgresql:// -> postgresql+asyncpg://
timebank_url() {
    local url=$1
    case "$url" in
        postgresql+*://*) echo "$url" ;;
        postgresql://* | postgres://*) echo "postgresql+asyncpg://${url#*://}" ;;
        *) die "not a PostgreSQL URL: $url" ;;
    esac
}

prune() {
    local dir=$1 pattern=$2
    if [[ -n "${BACKUP_KEEP_DAYS:-}" ]]; then
        [[ "$BACKUP_KEEP_DAYS" =~ ^[0-9]+$ ]] || die "BACKUP_KEEP_DAYS must be a number of days"
        find "$dir" -maxdepth 1 -type f -name "$pattern" -mtime +"$BACKUP_KEEP_DAYS" -print -delete >&2
    fi
}

# Refuse to write the keys into a directory that also holds database backups, and the
# reverse: keys never travel with the database.
check_apart() {
    local out=$1 kind=$2
    if [[ "$kind" == keys ]] && compgen -G "$out/timebank-db-*" > /dev/null; then
        die "$out holds database backups: archive the keys somewhere else"
    fi
    if [[ "$kind" == db ]] && compgen -G "$out/timebank-keys-*" > /dev/null; then
        die "$out holds key archives: back the database up somewhere else"
    fi
}

backup_sqlite() {
    local db=$1 out_dir=$2
    need sqlite3
    [[ -f "$db" ]] || die "no database file $db"
    mkdir -p "$out_dir"
    check_apart "$out_dir" db
    local name
    name="timebank-db-$(stamp).sqlite3"
    local partial="$out_dir/.$name.partial"
    # shellcheck disable=SC2064  # expand now: the local is gone when the trap runs
    trap "rm -f $(printf %q "$partial")" EXIT
    # The online backup API: a consistent snapshot including what is still in the WAL.
    sqlite3 "$db" ".backup '$partial'"
    local check
    check=$(sqlite3 "$partial" "PRAGMA integrity_check;")
    [[ "$check" == ok ]] || die "integrity_check of the copy failed: $check"
    # The copy keeps WAL mode in its header; make it a self-contained single file.
    sqlite3 "$partial" "PRAGMA journal_mode=DELETE;" > /dev/null
    gzip -9 "$partial"
    mv "$partial.gz" "$out_dir/$name.gz"
    trap - EXIT
    log "wrote $out_dir/$name.gz"
    prune "$out_dir" 'timebank-db-*.sqlite3.gz'
}

backup_postgres() {
    local url out_dir=$2
    url=$(libpq_url "$1")
    need pg_dump
    mkdir -p "$out_dir"
    check_apart "$out_dir" db
    local name
    name="timebank-db-$(stamp).pgdump"
    local partial="$out_dir/.$name.partial"
    # shellcheck disable=SC2064  # expand now: the local is gone when the trap runs
    trap "rm -f $(printf %q "$partial")" EXIT
    pg_dump --format=custom --compress=9 --file="$partial" --dbname="$url"
    # A dump that pg_restore cannot list is no backup.
    pg_restore --list "$partial" > /dev/null
    mv "$partial" "$out_dir/$name"
    trap - EXIT
    log "wrote $out_dir/$name"
    prune "$out_dir" 'timebank-db-*.pgdump'
}

backup_keys() {
    local key_dir=$1 out_dir=$2
    [[ -d "$key_dir" ]] || die "no key directory $key_dir"
    mkdir -p "$out_dir"
    chmod 0700 "$out_dir"
    check_apart "$out_dir" keys
    local name
    name="timebank-keys-$(stamp).tar.gz"
    local partial="$out_dir/.$name.partial"
    # shellcheck disable=SC2064  # expand now: the local is gone when the trap runs
    trap "rm -f $(printf %q "$partial")" EXIT
    # Keys are only ever added (rotation keeps old ones), so every archive is complete.
    tar -C "$(dirname "$key_dir")" -czf "$partial" "$(basename "$key_dir")"
    tar -tzf "$partial" > /dev/null
    chmod 0600 "$partial"
    mv "$partial" "$out_dir/$name"
    trap - EXIT
    log "wrote $out_dir/$name (0600): copy it to the keys' own, restricted destination"
    log "restore: tar -C /var/lib/timebank -xzf $out_dir/$name (keeps 0600/0700)"
    prune "$out_dir" 'timebank-keys-*.tar.gz'
}

restore_sqlite() {
    local backup=$1 db=$2 tb
    tb=$(timebank_cmd)
    need sqlite3
    [[ -f "$backup" ]] || die "no backup file $backup"
    [[ -e "$db" ]] && die "$db exists: stop the service and move it aside first (never overwrite)"
    [[ -d "$(dirname "$db")" ]] || die "no directory $(dirname "$db")"
    local partial
    partial="$(dirname "$db")/.$(basename "$db").restoring"
    # shellcheck disable=SC2064  # expand now: the local is gone when the trap runs
    trap "rm -f $(printf %q "$partial")" EXIT
    case "$backup" in
        *.gz) gzip -dc "$backup" > "$partial" ;;
        *) cp "$backup" "$partial" ;;
    esac
    local check
    check=$(sqlite3 "$partial" "PRAGMA integrity_check;")
    [[ "$check" == ok ]] || die "integrity_check failed: $check"
    # The copy is in rollback-journal mode; the service switches it back to WAL (and
    # synchronous=FULL) itself when it opens it.
    log "running timebank verify on the restored copy"
    "$tb" verify --db "$partial" || die "timebank verify FAILED: do not put this database live"
    mv "$partial" "$db"
    trap - EXIT
    log "restored $db; timebank verify passed. Restore the keys too (backup.sh keys archive)."
}

restore_postgres() {
    local dump=$1 url sa_url tb
    url=$(libpq_url "$2")
    sa_url=$(timebank_url "$2")
    tb=$(timebank_cmd)
    need pg_restore
    need psql
    [[ -f "$dump" ]] || die "no dump file $dump"
    local tables
    tables=$(psql --no-psqlrc --tuples-only --no-align --dbname="$url" \
        --command="SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    [[ "$tables" == 0 ]] || die "the target database has $tables tables: restore into an EMPTY database (createdb)"
    # One transaction: a failed restore leaves the database empty again.
    pg_restore --exit-on-error --single-transaction --dbname="$url" "$dump"
    log "running timebank verify on the restored database"
    "$tb" verify --db "$sa_url" || die "timebank verify FAILED: do not put this database live"
    log "restored into $(sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<< "$url"); timebank verify passed"
}

main() {
    if [[ "${1:-}" =~ ^(-h|--help|help)$ ]]; then
        usage
        exit 0
    fi
    if [[ $# -ne 3 ]]; then
        usage >&2
        exit 2
    fi
    local cmd=$1
    shift
    case "$cmd" in
        sqlite) backup_sqlite "$@" ;;
        postgres) backup_postgres "$@" ;;
        keys) backup_keys "$@" ;;
        restore-sqlite) restore_sqlite "$@" ;;
        restore-postgres) restore_postgres "$@" ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
