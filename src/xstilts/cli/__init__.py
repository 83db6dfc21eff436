"""The command line: one module per command group (:mod:`.evaluate`, :mod:`.train`,
:mod:`.experiment`, :mod:`.report`, :mod:`.scale`, :mod:`.resources`), a shared console
(:mod:`.console`) and options generated from the settings models (:mod:`.options`). The
command modules import the library and these two shared modules, never each other;
:mod:`.app` assembles them."""


def main() -> None:
    """The ``xstilts`` console script (see :func:`xstilts.cli.app.main`)."""
    from xstilts.cli.app import main as run  # the app imports every command module

    run()
