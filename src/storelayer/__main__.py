"""``python -m storelayer``: the ``storelayer`` command."""

from storelayer.cli import main

if __name__ == "__main__":
    main()
