"""The generated stubs in foryou_protos/ are exactly what scripts/gen_protos.py makes now."""
from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_stubs_are_up_to_date(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "foryou_protos").iterdir() if p.is_file()}
    committed = {p.name: p.read_bytes() for p in (ROOT / "foryou_protos").iterdir() if p.is_file()}
    assert fresh.keys() == committed.keys(), "stub files differ: run python scripts/gen_protos.py"
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, f"stale stubs {stale}: run python scripts/gen_protos.py"


def test_action_enum_matches_phoenix_action_list():
    from foryou_protos import common_pb2

    names = [v.name.lower() for v in common_pb2.Action.DESCRIPTOR.values if v.number > 0]
    assert names[0] == "favorite" and names[-1] == "report" and len(names) == 18
