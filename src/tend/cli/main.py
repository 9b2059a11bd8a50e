"""The ``tend`` command: assembles the sub-commands and turns every failure into one line."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from typer.core import TyperGroup
from typer.exceptions import TyperException

from tend import __version__
from tend.cli.alerts import alerts_app
from tend.cli.approvals import approvals_app
from tend.cli.ask import ask
from tend.cli.audit import audit_app, policy_app
from tend.cli.check import check
from tend.cli.errors import CliError
from tend.cli.eval import eval_command
from tend.cli.hosts import hosts_app
from tend.cli.jobs import jobs_app
from tend.cli.output import err
from tend.cli.run import run as run_command
from tend.cli.server import db_app, serve
from tend.cli.tokens import tokens_app
from tend.cli.users import users_app, validation_message
from tend.cli.workers import beat, worker


class TendGroup(TyperGroup):
    """The root command group: every failure below it becomes one line and an exit status."""

    def invoke(self, ctx: Any) -> Any:  # ctx: typer's vendored click Context
        """Run the chosen command, translating errors into a one-line message.

        Set ``TEND_DEBUG=1`` to see the traceback of an unexpected error.
        """
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except CliError as exc:
            _fail(exc.message, exc.exit_code)
        except ValidationError as exc:
            # Settings read from the environment can be invalid (e.g. TEND_DB_POOL_SIZE=abc).
            _fail(f"invalid configuration: {validation_message(exc)}", 2)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # the last line of defence: one line, not a traceback
            if os.environ.get("TEND_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (TEND_DEBUG=1 shows details)", 1)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


app = typer.Typer(
    name="tend",
    cls=TendGroup,
    help="tend: manage a fleet of Linux servers safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(hosts_app, name="hosts")
app.command("run", context_settings={"allow_interspersed_args": False})(run_command)
app.add_typer(approvals_app, name="approvals")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(jobs_app, name="jobs")
app.add_typer(alerts_app, name="alerts")
app.command("check")(check)
app.command("ask")(ask)
app.command("eval")(eval_command)
app.command("worker")(worker)
app.command("beat")(beat)


@app.command("version")
def version() -> None:
    """Print tend's version."""
    sys.stdout.write(f"tend {__version__}\n")


def run() -> None:
    """Entry point of the ``tend`` script."""
    app()
