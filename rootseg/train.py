"""`python -m rootseg.train`: the command lives in `rootseg.cli.train`."""

from rootseg.cli.train import entry

if __name__ == "__main__":
    entry()
