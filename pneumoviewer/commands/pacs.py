"""`pneumoviewer pacs nodes|add|remove|query|pull|push`: the PACS, headless.

A node is named (`--node NAME`, configured with `pacs add`) or given inline (`--url URL`, or
`--dimse AE@HOST:PORT`). A password never goes on the command line (shell history, `ps`): `pacs add
--user NAME` asks for it, and inline nodes read it from $PNEUMOVIEWER_PACS_PASSWORD.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail, report
from pneumoviewer.errors import Cancelled, FileProblem

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers
    from pneumoviewer.pacs.nodes import PacsNode
    from pneumoviewer.pacs.studies import StudyQuery

PASSWORD_VARIABLE = "PNEUMOVIEWER_PACS_PASSWORD"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "pacs", help="query, pull studies from and push results to a PACS (DICOMweb or DIMSE)",
        description="Work with a PACS: configure nodes, query studies, pull them into a local folder (then open "
        "it with `pneumoviewer FOLDER` or `pneumoviewer predict FOLDER`), push SEG and overlay objects back.")
    actions = parser.add_subparsers(dest="pacs_action", metavar="ACTION", required=True)

    actions.add_parser("nodes", help="list the configured PACS nodes").set_defaults(handler=run)

    add = actions.add_parser("add", help="configure a PACS node (replaces one of the same name)")
    add.add_argument("name")
    _add_address_arguments(add)
    add.add_argument("--ask-password", action="store_true",
                     help=f"ask for the password (else ${PASSWORD_VARIABLE} when --user is given)")
    add.set_defaults(handler=run)

    remove = actions.add_parser("remove", help="forget a configured PACS node")
    remove.add_argument("name")
    remove.set_defaults(handler=run)

    query = actions.add_parser("query", help="list the studies that match")
    _add_node_arguments(query)
    _add_query_arguments(query)
    query.set_defaults(handler=run)

    pull = actions.add_parser("pull", help="retrieve studies into a local folder (resumable)")
    _add_node_arguments(pull)
    pull.add_argument("studies", nargs="*", metavar="STUDY_UID", help="the studies to retrieve")
    _add_query_arguments(pull)
    pull.add_argument("--matching", action="store_true",
                      help="retrieve every study the query options match (instead of STUDY_UIDs)")
    pull.add_argument("--cache", type=Path, metavar="DIR",
                      help="the folder to retrieve into (default: the per-user PACS cache)")
    pull.add_argument("--discard-incoming", action="store_true",
                      help="delete what stopped retrievals left in the cache, instead of resuming them")
    pull.set_defaults(handler=run)

    push = actions.add_parser("push", help="send SEG / overlay objects (files or folders), each once")
    _add_node_arguments(push)
    push.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                      help="DICOM files, or folders of them (e.g. export's --seg-dir and --overlay-dir)")
    push.set_defaults(handler=run)


def _add_address_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="DICOMweb base URL, e.g. http://pacs:8042/dicom-web")
    parser.add_argument("--dimse", metavar="AE@HOST:PORT", help="DIMSE node: the server's AE title, host and port")
    parser.add_argument("--calling-ae", default="PNEUMOVIEWER", help="our AE title (DIMSE; default PNEUMOVIEWER)")
    parser.add_argument("--user", default="", help="user name for HTTP basic authentication (DICOMweb)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for the server (default 30)")


def _add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", help="a configured node's name (see `pneumoviewer pacs nodes`)")
    _add_address_arguments(parser)


def _add_query_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="date_from", default="", metavar="YYYYMMDD", help="studies on or after")
    parser.add_argument("--to", dest="date_to", default="", metavar="YYYYMMDD", help="studies on or before")
    parser.add_argument("--modality", action="append", choices=("CR", "DX"),
                        help="CR and/or DX (repeatable; default both)")
    parser.add_argument("--patient-id", default="", help="Patient ID (DICOM matching: * wildcards)")
    parser.add_argument("--patient-name", default="", help="Patient's Name (e.g. 'DOE^J*')")
    parser.add_argument("--accession", default="", help="Accession Number")
    parser.add_argument("--limit", type=int, default=500, help="at most this many studies (default 500)")


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.pacs.nodes import PacsError

    try:
        if args.pacs_action == "nodes":
            return _list_nodes()
        if args.pacs_action == "add":
            return _add_node(args)
        if args.pacs_action == "remove":
            return _remove_node(args.name)
        node = _node(args)
        if args.pacs_action == "query":
            return _query(node, _study_query(args))
        if args.pacs_action == "pull":
            return _pull(node, args)
        return _push(node, args.paths)
    except (PacsError, FileProblem) as error:
        return fail(error)
    except ValueError as error:
        return fail(str(error), status=2)
    except Cancelled:
        return fail("interrupted: run the same command again to resume")


def _list_nodes() -> int:
    from pneumoviewer.pacs.nodes import load_nodes, nodes_path

    nodes = load_nodes()
    for node in nodes:
        print(node.describe())
    if not nodes:
        print(f"no PACS nodes configured ({nodes_path()}); add one with `pneumoviewer pacs add`")
    return 0


def _add_node(args: argparse.Namespace) -> int:
    from getpass import getpass

    from pneumoviewer.pacs.nodes import load_nodes, save_nodes

    password = ""
    if args.user:
        asked = args.ask_password
        password = getpass(f"password for {args.user}: ") if asked else os.environ.get(PASSWORD_VARIABLE, "")
    node = _inline_node(args, args.name, password)
    if node is None:
        return fail("pacs add: give --url URL or --dimse AE@HOST:PORT", status=2)
    nodes = [existing for existing in load_nodes() if existing.name != node.name] + [node]
    path = save_nodes(nodes)
    print(f"{node.describe()} (saved in {path})")
    return 0


def _remove_node(name: str) -> int:
    from pneumoviewer.pacs.nodes import find_node, load_nodes, save_nodes

    find_node(name)
    save_nodes([node for node in load_nodes() if node.name != name])
    print(f"removed PACS node {name}")
    return 0


def _node(args: argparse.Namespace) -> PacsNode:
    from pneumoviewer.pacs.nodes import find_node

    inline = _inline_node(args, "command line", os.environ.get(PASSWORD_VARIABLE, "") if args.user else "")
    if (args.node is None) == (inline is None):
        raise ValueError("give either --node NAME or --url URL / --dimse AE@HOST:PORT")
    return inline if inline is not None else find_node(args.node)


def _inline_node(args: argparse.Namespace, name: str, password: str) -> PacsNode | None:
    from pneumoviewer.pacs.nodes import PacsNode

    if args.url and args.dimse:
        raise ValueError("give --url or --dimse, not both")
    if args.url:
        return PacsNode(name, "dicomweb", url=args.url, username=args.user, password=password,
                        timeout_s=args.timeout)
    if args.dimse:
        ae_title, at, address = args.dimse.partition("@")
        host, colon, port = address.rpartition(":")
        if not at or not colon or not port.isdigit():
            raise ValueError(f"--dimse expects AE@HOST:PORT, got {args.dimse!r}")
        return PacsNode(name, "dimse", ae_title=ae_title, host=host, port=int(port), calling_ae=args.calling_ae,
                        timeout_s=args.timeout)
    return None


def _study_query(args: argparse.Namespace) -> StudyQuery:
    from pneumoviewer.pacs.studies import QUERY_MODALITIES, StudyQuery

    return StudyQuery(args.date_from, args.date_to, tuple(args.modality or QUERY_MODALITIES), args.patient_id,
                      args.patient_name, args.accession, args.limit)


def _query(node: PacsNode, query: StudyQuery) -> int:
    from pneumoviewer.pacs.connection import connect

    with connect(node) as connection:
        studies = connection.query(query)
    print("StudyInstanceUID\tStudyDate\tModalities\tPatientID\tPatientName\tAccession\tInstances\tDescription")
    for study in studies:
        print("\t".join((study.study_uid, study.study_date, "\\".join(study.modalities), study.patient_id,
                         study.patient_name, study.accession_number,
                         "" if study.instances is None else str(study.instances), study.description)))
    print(f"{len(studies)} studies on {node.describe()}", file=sys.stderr)
    return 0


def _pull(node: PacsNode, args: argparse.Namespace) -> int:
    from pneumoviewer.pacs.connection import connect
    from pneumoviewer.pacs.retrieve import discard_incoming, incoming_studies, retrieve_studies
    from pneumoviewer.paths import pacs_cache_dir
    from pneumoviewer.progress import progress_bar

    cache = args.cache or pacs_cache_dir()
    if args.discard_incoming:
        for uid in discard_incoming(cache):
            print(f"discarded the stopped retrieval of study {uid}")
    studies = list(args.studies)
    if args.matching:
        with connect(node) as connection:
            studies += [study.study_uid for study in connection.query(_study_query(args))]
    if not studies:
        if args.discard_incoming:
            return 0
        return fail("pacs pull: give STUDY_UIDs, or --matching with query options", status=2)
    resumed = set(incoming_studies(cache)) & set(studies)
    for uid in sorted(resumed):
        print(f"resuming the retrieval of study {uid}")
    with progress_bar(0, "pull", unit="instance") as bar:  # the total is known once the studies are listed
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            retrieved = retrieve_studies(node, list(dict.fromkeys(studies)), cache, progress)
        except KeyboardInterrupt as interrupt:
            raise Cancelled("interrupted") from interrupt
    for study in retrieved:
        print(f"{study.folder}: {study.instances} instances ({study.fetched} retrieved now)")
    print(f"open them with: pneumoviewer {cache}")
    return 0


def _push(node: PacsNode, paths: list[Path]) -> int:
    from pneumoviewer.pacs.push import PushStatus, push_objects

    result = push_objects(node, paths)
    if result.stopped_by is not None:
        report(result.stopped_by)
    for item in result.results:
        line = f"{item.path}: {item.status.value}" + (f" ({item.reason})" if item.reason else "")
        if item.status is PushStatus.FAILED:
            report(line)
        else:
            print(line)
    sent = len(result.with_status(PushStatus.SENT, PushStatus.ALREADY_THERE))
    skipped = len(result.with_status(PushStatus.ALREADY_SENT))
    print(f"{sent} sent, {skipped} sent before (not again), {len(result.failed)} failed (retried on the next push)")
    return 1 if result.failed else 0
