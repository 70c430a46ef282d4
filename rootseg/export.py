"""`python -m rootseg.export`: the command lives in `rootseg.cli.export`."""

from rootseg.cli.export import entry

if __name__ == "__main__":
    entry()
