"""Regenerate the Python protobuf/gRPC stubs in foryou_protos/ from protos/.

    python scripts/gen_protos.py            # write into the repository
    python scripts/gen_protos.py --out DIR  # write elsewhere (the staleness test uses this)
"""
from __future__ import annotations

import argparse
import pathlib

from grpc_tools import protoc
import grpc_tools

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def generate(out: pathlib.Path) -> list[pathlib.Path]:
    protos = sorted((PROTO_ROOT / "foryou_protos").glob("*.proto"))
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    init = out / "foryou_protos" / "__init__.py"
    init.write_text('"""Generated protobuf/gRPC stubs (scripts/gen_protos.py). Do not edit."""\n')
    return sorted((out / "foryou_protos").glob("*.py*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in generate(args.out):
        print(path.relative_to(args.out))


if __name__ == "__main__":
    main()
