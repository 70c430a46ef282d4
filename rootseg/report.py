"""`python -m rootseg.report`: the command lives in `rootseg.cli.report`."""

from rootseg.cli.report import entry

if __name__ == "__main__":
    entry()
