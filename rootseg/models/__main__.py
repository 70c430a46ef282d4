"""`python -m rootseg.models`: the command lives in `rootseg.cli.models`."""

from rootseg.cli.models import entry

if __name__ == "__main__":
    entry()
