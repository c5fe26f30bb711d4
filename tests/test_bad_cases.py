"""The bad-input catalogue: every file in tests/bad_cases/ is malformed in one way (or
several); its ``# expect: LINE FIELD: fragment`` header lines say exactly which errors
(file:line, field, and a fragment of the message) the loader must report, and no others."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance import api, cli

CATALOGUE = Path(__file__).parent / "bad_cases"
EXPECT = re.compile(rb"^# expect: (\d+) (\S+): (.*)$")


def expectations(path: Path) -> list[tuple[int, str | None, str]]:
    """The ``# expect:`` lines of a catalogue file: (line, field or None, message fragment)."""
    # Read as bytes: one file is deliberately not UTF-8. Lines end in LF, CRLF or CR (some files
    # test each); one file starts with a byte order mark.
    text = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    found = [EXPECT.match(line) for line in re.split(rb"\r\n|\r|\n", text)]
    return [(int(match[1]), None if match[2] == b"-" else match[2].decode(), match[3].decode())
            for match in found if match]


FILES = sorted(CATALOGUE.glob("*.yaml"))


def test_the_catalogue_has_at_least_140_distinct_malformed_inputs():
    assert len(FILES) >= 140
    assert all(expectations(path) for path in FILES)
    assert len({path.read_bytes() for path in FILES}) == len(FILES)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_each_error_is_reported_exactly(path):
    cases, errors = api.validate([path])
    expected = expectations(path)
    assert cases == []
    got = [str(error) for error in errors]
    assert len(got) == len(expected), "\n".join(got)
    for message, (line, field, fragment) in zip(got, expected):
        prefix = f"{path}:{line}: {field}: " if field else f"{path}:{line}: "
        assert message.startswith(prefix), message
        assert fragment in message, message
        assert "Traceback" not in message


def test_validate_cli_lists_every_error_of_the_catalogue(capsys):
    assert cli.main(["validate", str(CATALOGUE)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == sum(len(expectations(path)) for path in FILES)
    for path in FILES:
        for line, field, _ in expectations(path):
            where = f"{path.name}:{line}: " + (f"{field}: " if field else "")
            assert any(where in text for text in lines), where
    assert f"problem(s) in {len(FILES)} file(s)" in err
