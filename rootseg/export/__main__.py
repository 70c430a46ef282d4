"""`python -m rootseg.export`: the command lives in `rootseg.cli.export`.

rootseg/export/ is a package (the library), so the shim that the other commands keep as rootseg/<command>.py
lives here; a rootseg/export.py beside the package was never imported.
"""

from rootseg.cli.export import entry

if __name__ == "__main__":
    entry()
