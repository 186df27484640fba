"""The `timebank` command: demo data, verification, export, and the ledger's scheduled jobs."""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy.exc import DBAPIError, OperationalError

from ledger import BundleError, LedgerError, RecordError
from main.cli import demo, jobs, ledger, reports, service
from main.cli.common import Command, UsageError

__all__ = ["COMMANDS", "UsageError", "main"]

# Each command group's subcommands, listed (`timebank --help`) in this order.
ORDER = (
    "demo",
    "verify",
    "export-log",
    "export-journal",
    "report",
    "checkpoint",
    "expire",
    "repair-decisions",
    "rotate-key",
    "serve",
    "init",
    "token",
    "migrate-store",
    "migrate",
    "account",
    "receipt",
    "verify-receipt",
    "keys",
)
_GROUPS: dict[str, Command] = {
    **demo.COMMANDS,
    **ledger.COMMANDS,
    **reports.COMMANDS,
    **jobs.COMMANDS,
    **service.COMMANDS,
}
assert sorted(ORDER) == sorted(_GROUPS), "every command in ORDER, once"
COMMANDS = {name: _GROUPS[name] for name in ORDER}  # the dispatch table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timebank", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "action", None) == "rotate":
        args.command = "rotate-key"
    try:
        return COMMANDS[args.command].run(args)
    except (BundleError, RecordError) as exc:
        print(f"FAILED bundle: {exc}", file=sys.stderr)
        return 1
    except LedgerError as exc:  # a request the ledger refused: an argument at fault
        print(f"timebank: {exc.message}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # (an OSError) a server that does not answer
        print(f"timebank: cannot reach the database server: {_line(exc)}", file=sys.stderr)
        return 2
    except (UsageError, OSError, ValueError) as exc:  # bad arguments, unreadable input
        print(f"timebank: {_line(exc)}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        # a server that refuses the connection (no such database, login refused), a file that
        # is not a database, a database without this service's tables: one line naming
        # neither the URL nor its password
        why = _line(exc.orig or exc)
        if isinstance(exc, OperationalError) and why.lower().startswith("connection"):
            print(f"timebank: cannot reach the database server: {why}", file=sys.stderr)
        else:
            print(f"timebank: cannot use the database: {why}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a fault of ours: one line, the traceback only when asked
        if os.environ.get("TIMEBANK_DEBUG"):
            raise
        print(
            f"timebank: unexpected error ({type(exc).__name__}: {_line(exc)}); "
            "TIMEBANK_DEBUG=1 shows the traceback",
            file=sys.stderr,
        )
        return 3


def _line(exc: BaseException) -> str:
    """An exception's message as one line."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
