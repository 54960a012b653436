"""PagoEfectivo credentials per store, from environment variables only (never from files); the
`PagoEfectivoApi` resource (resources.py) holds them and hands them to these functions.

`PAGORECON_PE_<STORE_ID_UPPER>_<FIELD>`; FIELD is ACCESS_KEY, SECRET_KEY, SERVICE_ID or API_URL.
ACCESS_KEY and API_URL fall back to `PAGORECON_PE_<FIELD>` for a store with no variable of its own.
SECRET_KEY and SERVICE_ID never do: they tell one store's notifications from another's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_PREFIX = "PAGORECON_PE_"
ACCESS_KEY, SECRET_KEY, SERVICE_ID, API_URL = "ACCESS_KEY", "SECRET_KEY", "SERVICE_ID", "API_URL"
# A shared secret would let a body signed for one store be accepted at every store's URL.
PER_STORE_ONLY = (SECRET_KEY, SERVICE_ID)


class MissingCredentials(LookupError):
    """A variable the store needs is not set; the message names the variables, never a value."""


@dataclass(frozen=True)
class Credentials:
    store_id: str
    access_key: str
    service_id: str
    api_url: str
    # repr=False: a logged or raised Credentials never shows the secret.
    secret_key: str = field(repr=False)


def env_names(store_id: str, name: str) -> tuple[str, ...]:
    """The store's own variable, then the shared fallback where the field has one."""
    own = f"{ENV_PREFIX}{store_id.upper()}_{name}"
    return (own,) if name in PER_STORE_ONLY else (own, f"{ENV_PREFIX}{name}")


def lookup(store_id: str, name: str, environ: Mapping[str, str]) -> str | None:
    for variable in env_names(store_id, name):
        value = environ.get(variable, "").strip()
        if value:
            return value
    return None


def secret_key(store_id: str, environ: Mapping[str, str]) -> str | None:
    return lookup(store_id, SECRET_KEY, environ)


def credentials_for(store_id: str, environ: Mapping[str, str]) -> Credentials:
    values = {name: lookup(store_id, name, environ) for name in (ACCESS_KEY, SECRET_KEY, SERVICE_ID, API_URL)}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        wanted = "; ".join(" or ".join(env_names(store_id, name)) for name in missing)
        raise MissingCredentials(f"store {store_id!r}: PagoEfectivo credentials not set: {wanted}")
    return Credentials(
        store_id=store_id,
        access_key=values[ACCESS_KEY],
        service_id=values[SERVICE_ID],
        api_url=values[API_URL].rstrip("/"),
        secret_key=values[SECRET_KEY],
    )
