"""PACS nodes: where a server is, how to reach it, and the error it gives.

A node is a DICOMweb base URL (`kind="dicomweb"`) or a DIMSE application entity (`kind="dimse"`: AE
title, host, port). Nodes are kept in the per-user data folder (`pacs-nodes.json`, owner-only
permissions, written atomically); a password is stored there and nowhere else: it is left out of
`repr`, `describe()` and every message.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from pneumoviewer.errors import FileProblem

NODES_FILE = "pacs-nodes.json"
KINDS = ("dicomweb", "dimse")
DEFAULT_CALLING_AE = "PNEUMOVIEWER"


class PacsError(FileProblem):
    """What went wrong with one PACS node, in plain words: "PACS <name> (<address>): <reason>".

    `path` is the node's name (a node is not a file, but the CLI and the window print this error as
    they print every other `FileProblem`).
    """

    def __init__(self, node: PacsNode, reason: str) -> None:
        self.node_name = node.name
        super().__init__(node.name, reason, where=f"PACS {node.name} ({node.address})")


@dataclass(frozen=True)
class PacsNode:
    name: str
    kind: str  # "dicomweb" or "dimse"
    url: str = ""  # DICOMweb base URL, e.g. http://pacs:8042/dicom-web
    ae_title: str = ""  # DIMSE: the server's (called) AE title
    host: str = ""
    port: int = 0
    calling_ae: str = DEFAULT_CALLING_AE  # DIMSE: our AE title, as the server knows it
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a PACS node needs a name")
        if self.kind not in KINDS:
            raise ValueError(f"PACS node {self.name}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "dicomweb" and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"PACS node {self.name}: a DICOMweb node needs an http(s):// base URL")
        if self.kind == "dimse":
            if not self.ae_title or len(self.ae_title) > 16 or not self.host:
                raise ValueError(f"PACS node {self.name}: a DIMSE node needs an AE title (1-16 characters) and a host")
            if not 0 < self.port < 65536:
                raise ValueError(f"PACS node {self.name}: port {self.port} is not a TCP port")
        if self.timeout_s <= 0:
            raise ValueError(f"PACS node {self.name}: the timeout must be positive")

    @property
    def address(self) -> str:
        """Where it is, without credentials: the URL, or AE@host:port."""
        if self.kind == "dicomweb":
            return self.url
        return f"{self.ae_title}@{self.host}:{self.port}"

    def describe(self) -> str:
        """One line for lists and logs; says whether a login is set, never the password."""
        login = f", user {self.username}" if self.username else ""
        return f"{self.name}: {self.kind} {self.address}{login}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> PacsNode:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown PACS node settings: {', '.join(unknown)}")
        node = cls(**values)  # type: ignore[arg-type]
        return replace(node, port=int(node.port), timeout_s=float(node.timeout_s))


def nodes_path(data_dir: Path | None = None) -> Path:
    from pneumoviewer.paths import user_data_dir

    return (data_dir or user_data_dir()) / NODES_FILE


def load_nodes(data_dir: Path | None = None) -> list[PacsNode]:
    """The configured nodes ([] when none). Raises FileProblem for a damaged file (it is never overwritten
    silently: the user's servers would be lost)."""
    path = nodes_path(data_dir)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        raise FileProblem(path, f"the PACS settings cannot be read ({error})") from error
    try:
        return [PacsNode.from_dict(entry) for entry in entries["nodes"]]
    except (KeyError, TypeError, ValueError) as error:
        raise FileProblem(path, f"the PACS settings are damaged ({error})") from error


def save_nodes(nodes: list[PacsNode], data_dir: Path | None = None) -> Path:
    """Replace the configured nodes (atomically; readable by the owner only: it may hold passwords)."""
    from pneumoviewer.io.atomic import atomic_write_text

    names = [node.name for node in nodes]
    if len(set(names)) != len(names):
        raise ValueError("two PACS nodes have the same name")
    path = nodes_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    os.chmod(path, 0o600)  # atomic_write keeps an existing file's permissions
    atomic_write_text(path, json.dumps({"nodes": [node.to_dict() for node in nodes]}, indent=1) + "\n")
    return path


def find_node(name: str, data_dir: Path | None = None) -> PacsNode:
    """The configured node called `name`; ValueError naming the ones there are."""
    nodes = load_nodes(data_dir)
    for node in nodes:
        if node.name == name:
            return node
    known = ", ".join(node.name for node in nodes) or "none configured"
    raise ValueError(f"no PACS node called {name!r} ({known}); add one with `pneumoviewer pacs add`")
