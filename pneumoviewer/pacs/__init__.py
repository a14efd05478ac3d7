"""Pull from and push to a PACS, over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) or DIMSE (C-FIND, C-GET, C-STORE).

No Qt. `nodes` holds the configured servers (per-user settings; the password never in a repr or a
log) and `PacsError`, the one error a server gives; `connection.connect(node)` opens either kind
behind one interface; `retrieve` fills a local cache folder study by study (resumable: a study
being retrieved lives in `<cache>/.incoming/` until every instance is there, then moves into place, so
a folder opened from the cache never holds half a study); `push` sends SEG / overlay objects once
each (a ledger of the SOP Instance UIDs each node acknowledged, written atomically).
"""
