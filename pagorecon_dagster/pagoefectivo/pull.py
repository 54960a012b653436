"""Pull `/v1/cips/search` for a date range into `landing/statements/<store_id>/` as the API's
reply wrapper `{code, message, data: [...]}`, the JSON shape the ingester reads (docs/landing-formats.md, Statements).

The file name carries the range and the first 8 hex digits of the content's SHA-256: pulling
the same CIPs again gives the same name, so nothing new lands and ingestion has nothing to do;
CIPs that changed give a new file that supersedes the earlier one."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pagorecon_dagster.config import Settings
from pagorecon_dagster.pagoefectivo.client import PagoEfectivoClient, dumps_exact
from pagorecon_dagster.pagoefectivo.landing import write_new

if TYPE_CHECKING:
    from pagorecon_dagster.resources import PagoEfectivoApi


@dataclass(frozen=True)
class PullResult:
    store_id: str
    path: Path
    cips: int
    written: bool  # False: the same content was already in landing/


def pull_cips(
    settings: Settings,
    store_id: str,
    start: dt.date,
    end: dt.date,
    *,
    client: PagoEfectivoClient | None = None,
    api: PagoEfectivoApi | None = None,
) -> PullResult:
    """Pull with `client`, else with a client made from the store's credentials in `api`."""
    try:
        settings.store(store_id)
    except KeyError:
        raise ValueError(f"store {store_id!r} is not in pagorecon.yaml (known: {', '.join(settings.store_ids)})") from None
    if client is None:
        if api is None:
            raise ValueError("pull_cips needs a client or the PagoEfectivoApi resource")
        client = PagoEfectivoClient(api.credentials_for(store_id))
    reply = client.search_cips(start, end)
    content = reply_bytes(reply)
    sha8 = hashlib.sha256(content).hexdigest()[:8]
    path = settings.landing / "statements" / store_id / f"pe_api_{start.isoformat()}_{end.isoformat()}_{sha8}.json"
    written = write_new(path, content)
    return PullResult(store_id, path, len(reply["data"]), written)


def reply_bytes(reply: dict[str, Any]) -> bytes:
    """The wrapper as UTF-8 JSON, one CIP a line; the same CIPs always give the same bytes."""
    head = f'{{"code": {dumps_exact(reply["code"])}, "message": {dumps_exact(reply["message"])}, "data": ['
    items = ",\n".join(dumps_exact(item) for item in reply["data"])
    return (head + ("\n" + items + "\n" if items else "") + "]}\n").encode("utf-8")
