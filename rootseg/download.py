"""`python -m rootseg.download`: the command lives in `rootseg.cli.download`."""

from rootseg.cli.download import entry

if __name__ == "__main__":
    entry()
