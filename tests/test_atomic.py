import os
import stat

import pytest

from spart.atomic import (
    atomic_path,
    atomic_write,
    replace_directory,
    write_bytes_atomic,
    write_text_atomic,
)


class Boom(Exception):
    pass


def test_atomic_write_lands_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as handle:
        handle.write(b"\x00\x01payload")
        assert not target.exists()  # nothing under the final name until the block ends
    assert target.read_bytes() == b"\x00\x01payload"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_error_inside_block_keeps_old_file_and_removes_temp(tmp_path, error):
    target = tmp_path / "data.json"
    target.write_bytes(b'{"old": true}\n')
    with pytest.raises(error):
        with atomic_write(target, "w", encoding="utf-8") as handle:
            handle.write('{"new": ')
            raise error()
    assert target.read_bytes() == b'{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]


def test_error_without_previous_file_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        with atomic_write(tmp_path / "new.txt", "w") as handle:
            handle.write("half")
            raise Boom()
    assert list(tmp_path.iterdir()) == []


def test_text_mode_encoding_and_newline(tmp_path):
    target = tmp_path / "t.csv"
    with atomic_write(target, "w", encoding="utf-16", newline="") as handle:
        handle.write("é,ü\r\nx\n")
    assert target.read_bytes().decode("utf-16") == "é,ü\r\nx\n"
    write_text_atomic(target, "naïve\n")
    assert target.read_bytes() == "naïve\n".encode()
    write_bytes_atomic(target, b"raw")
    assert target.read_bytes() == b"raw"


def test_temp_file_is_hidden_next_to_target_and_result_has_umask_permissions(tmp_path):
    target = tmp_path / "index.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".index.bin.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"written by name")
    assert target.read_bytes() == b"written by name"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_replace_directory_swaps_and_restores_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "w").write_text("old")
    staging = tmp_path / ".model.staging"
    staging.mkdir()
    (staging / "w").write_text("new")
    replace_directory(staging, target)
    assert (target / "w").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # staging moved, backup removed

    staging.mkdir()
    (staging / "w").write_text("newer")
    real_replace = os.replace

    def fail_on_staging(src, dst):
        if os.fspath(src) == os.fspath(staging):
            raise OSError("simulated")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_staging)
    with pytest.raises(OSError, match="simulated"):
        replace_directory(staging, target)
    monkeypatch.undo()
    assert (target / "w").read_text() == "new"  # the backup was put back
