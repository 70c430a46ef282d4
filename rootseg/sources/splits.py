"""The split checks every train, eval and check runs first: cheap, from names alone (no pixel is read).

One implementation for every source: a folder's `split.json` is parsed by `read_split_file`, and every
source's splits, however made (split file, Smith's rule, PRMI's folders, RootPainter's annotation folders),
pass `check_disjoint`: an image in two splits would put training images into the scores.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from rootseg.sources.base import SPLITS, CachedSplits, DataLayoutError, Sample

_EXAMPLE = '{"train": ["stem", ...], "val": [...], "test": [...]}'


def check_disjoint(splits: Mapping[str, Iterable[str]], where: Path | str, same: Collection[str] = ()) -> None:
    """Raise naming every image listed twice in one split or in two splits; `same` names a split that is
    declared to be another one (test = val without a test list), which is not an overlap."""
    names = {split: list(members) for split, members in splits.items() if split not in same}
    problems = []
    for split, members in names.items():
        twice = sorted(stem for stem, n in Counter(members).items() if n > 1)
        if twice:
            problems.append(f"{len(twice)} image(s) listed twice in {split}: {twice[:5]}")
    keys = list(names)
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            both = sorted(set(names[first]) & set(names[second]))
            if both:
                problems.append(f"{len(both)} image(s) in both {first} and {second}: {both[:5]}")
    if problems:
        raise DataLayoutError(
            f"{where}: {'; '.join(problems)}. Each image belongs to one split: an image in two would score the "
            "model on images it was trained or tuned on"
        )


def _check_keys(names: object, path: Path) -> dict:
    """The file is an object whose keys are split names."""
    if not isinstance(names, dict):
        raise DataLayoutError(
            f"{path}: a split file is a JSON object {_EXAMPLE}, not a JSON {_json_type(names)}"
            + (" (a list of stems does not say which split each is in)" if isinstance(names, list) else "")
        )
    unknown = [key for key in names if key not in SPLITS]
    if unknown:
        hints = []
        for key in unknown:
            close = [s for s in SPLITS if str(key).lower().startswith(s)]  # training, validation, testing
            close = close or difflib.get_close_matches(str(key).lower(), SPLITS, n=1, cutoff=0.5)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DataLayoutError(
            f"{path}: {', '.join(hints)} {'is not a split name' if len(unknown) == 1 else 'are not split names'}; "
            f"the keys are {', '.join(SPLITS)}: {_EXAMPLE}"
        )
    if not names:
        raise DataLayoutError(f"{path}: the split file names no split: {_EXAMPLE}")
    return names


def _json_type(value: object) -> str:
    """The JSON name of a parsed value's type."""
    names = {dict: "object", list: "list", str: "string", bool: "true/false", int: "number", float: "number"}
    return names.get(type(value), "null")


def _check_types(names: dict, path: Path) -> dict[str, list[str]]:
    """Each split is a list of stems (strings)."""
    for key, members in names.items():
        if not isinstance(members, list):
            raise DataLayoutError(
                f"{path}: {key!r} must be a list of image stems, got a JSON {_json_type(members)} "
                f"({json.dumps(members)[:60]}): {_EXAMPLE}"
            )
        wrong = [m for m in members if not isinstance(m, str)]
        if wrong:
            raise DataLayoutError(
                f"{path}: {key!r} holds {len(wrong)} entries that are not strings ({json.dumps(wrong[:5])[:80]}); "
                'write every image stem in quotes, e.g. "001"'
            )
    return names


def read_split_file(path: Path, stems: Collection[str], images: Path | str = "images/") -> dict[str, list[str]]:
    """Parse and check a split file against the stems found (`images` names their folder in errors):
    an object with known keys, lists of strings, names that exist, no image twice."""
    try:
        names = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte order mark (Notepad) is fine
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataLayoutError(f"{path}: not valid JSON ({error})") from error
    names = _check_types(_check_keys(names, path), path)
    unknown = sorted({s for members in names.values() for s in members} - set(stems))
    if unknown:
        with_suffix = [s for s in unknown if Path(s).suffix and Path(s).stem in stems]
        hint = "; split files list stems, file names without the extension" if with_suffix else ""
        raise DataLayoutError(f"{path}: names {len(unknown)} image(s) not in {images}: {unknown[:10]}{hint}")
    check_disjoint(names, path)
    return names


class SplitByFolder(CachedSplits):
    """Sources whose folders say each file's split (PRMI's train/val/test, RootPainter's annotations/train and
    val): `match` records stem -> split in `_which`, so a stem in two folders is a matching problem and the
    splits are disjoint by construction. `split_folders` are the splits the folders hold; without a test
    folder, test is val."""

    split_folders: Sequence[str] = SPLITS
    _which: dict[str, str]

    def _split_origin(self) -> Path:
        """The file or folder errors about the splits name."""
        return self.root

    def _make_splits(self) -> dict[str, list[Sample]]:
        samples = self.samples()
        splits = {k: [s for n, s in samples.items() if self._which[n] == k] for k in self.split_folders}
        same: tuple[str, ...] = ()
        if "test" not in splits:
            splits["test"], same = splits["val"], ("test",)
        check_disjoint({k: [s.name for s in v] for k, v in splits.items()}, self._split_origin(), same=same)
        return splits

    def check_splits(self) -> None:
        """Group the matched stems by folder and check them disjoint (lists files, reads no image)."""
        samples, _ = self.match()
        by_split: dict[str, list[str]] = {}
        for stem in samples:
            by_split.setdefault(self._which[stem], []).append(stem)
        check_disjoint(by_split, self._split_origin())
