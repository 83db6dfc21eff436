"""``python -m xstilts`` (also what ``accelerate launch -m xstilts`` runs)."""

from xstilts.cli import main

if __name__ == "__main__":
    main()
