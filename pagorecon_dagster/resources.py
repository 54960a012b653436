"""The outside world as Dagster resources: the warehouse, the refund provider, the PagoEfectivo
API, the Shopify Admin API, the WooCommerce REST API and the BCRP statistics API. Assets, sensors and CLI commands receive them; nothing else reads the environment for them.

`from_environment(settings)` configures them the way a deployment does: each setting is an
`EnvVar` of its variable (README.md, Configuration), read where the resource is used (a run, a
sensor tick, a command), so no value, and no secret, is stored in the definitions or shown in the
Dagster UI. A variable that is not set leaves the resource's default. Tests and the demo pass
resources of their own (a sandbox provider's URL and key) instead."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from pagorecon_dagster.alerts.channel import WEBHOOK_ENV, AlertChannel
from pagorecon_dagster.config import ConfigError, Settings, home_dir, load_settings
from pagorecon_dagster.pagoefectivo import credentials
from pagorecon_dagster.rates.bcrp import DEFAULT_BASE_URL as DEFAULT_BCRP_URL
from pagorecon_dagster.rates.bcrp import BcrpClient
from pagorecon_dagster.refunds.payout import EXECUTOR_ENV
from pagorecon_dagster.refunds.provider_api import KEY_ENV, TIMEOUT_ENV, URL_ENV, ApiSettings, api_settings
from pagorecon_dagster.stores import woocommerce
from pagorecon_dagster.warehouse.duckdb import MEMORY_LIMIT_ENV, connect

# Resource keys: the names assets, checks and sensors take the resources by.
WAREHOUSE, REFUND_PROVIDER, PAGOEFECTIVO = "pagorecon", "refund_provider", "pagoefectivo"
SHOPIFY, WOOCOMMERCE, BCRP = "shopify", "woocommerce", "bcrp"
BCRP_URL_ENV = "PAGORECON_BCRP_URL"
# A `source: shopify_api` store's Admin API access token: PAGORECON_SHOPIFY_TOKEN_<STORE_ID upper-cased>.
SHOPIFY_TOKEN_PREFIX = "PAGORECON_SHOPIFY_TOKEN_"
# Instead of https://<shop_domain>: another base URL for every Shopify store (the sandbox).
SHOPIFY_API_URL_ENV = "PAGORECON_SHOPIFY_API_URL"


def value(field: Any) -> str:
    """A field's text: an `EnvVar` not yet resolved (definitions, a command) is read now."""
    if isinstance(field, dg.EnvVar):
        return field.get_value(default="") or ""
    return "" if field is None else str(field)


class Warehouse(dg.ConfigurableResource):
    """`PAGORECON_HOME` (config, landing folder; the warehouse's place is its `warehouse:` block) and DuckDB's memory limit."""

    home: str = Field(default="", description="the state folder; empty: $PAGORECON_HOME, else ~/.pagorecon")
    memory_limit: str = Field(default="", description="DuckDB memory cap like 2600MB ($PAGORECON_DUCKDB_MEMORY_LIMIT); "
                              "empty: DuckDB's default, 80% of the machine's RAM")

    @property
    def path(self) -> Path:
        return Path(self.home).expanduser().resolve() if self.home else home_dir()

    def settings(self) -> Settings:
        return load_settings(self.path)

    @contextlib.contextmanager
    def warehouse(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.settings().lake, read_only=read_only, memory_limit=value(self.memory_limit)) as con:
            yield con


# The name assets and checks have always annotated the warehouse resource with.
PagoreconHome = Warehouse


class RefundProvider(dg.ConfigurableResource):
    """The `api` refund executor's provider, and which executor pays refunds out."""

    url: str = Field(default="", description="the provider's base URL ($PAGORECON_REFUND_API_URL)")
    key: str = Field(default="", repr=False, description="the provider's API key ($PAGORECON_REFUND_API_KEY); secret")
    timeout_seconds: str = Field(default="", description="per provider call ($PAGORECON_REFUND_API_TIMEOUT_SECONDS); empty: 10")
    executor: str = Field(default="", description="api | payout_file ($PAGORECON_REFUND_EXECUTOR); empty: pagorecon.yaml "
                          "`refunds.executor`, else api when a URL is set, else payout_file")

    def url_value(self) -> str:
        return value(self.url).strip()

    def executor_value(self) -> str:
        return value(self.executor).strip()

    def api_settings(self, **tuning: Any) -> ApiSettings:
        """The client's settings; a missing URL or key, or a timeout that is not a number, is a
        ConfigError naming its variable."""
        return api_settings(value(self.url), value(self.key), value(self.timeout_seconds), **tuning)


class PagoEfectivoApi(dg.ConfigurableResource):
    """PagoEfectivo credentials per store: the `PAGORECON_PE_*` variables (pagoefectivo/credentials.py
    says which a store reads). All are secret."""

    variables: dict[str, str] = Field(default_factory=dict, repr=False,
                                      description="PAGORECON_PE_<STORE>_<FIELD> and PAGORECON_PE_<FIELD> values, by name")

    def environ(self) -> dict[str, str]:
        return {name: value(field) for name, field in self.variables.items()}

    def credentials_for(self, store_id: str) -> credentials.Credentials:
        return credentials.credentials_for(store_id, self.environ())

    def lookup(self, store_id: str, name: str) -> str | None:
        return credentials.lookup(store_id, name, self.environ())


class ShopifyApi(dg.ConfigurableResource):
    """Shopify Admin API access tokens per store (`PAGORECON_SHOPIFY_TOKEN_<STORE>`, secret) and an
    optional base URL that replaces every shop's `https://<shop_domain>` (the sandbox)."""

    tokens: dict[str, str] = Field(default_factory=dict, repr=False,
                                   description="PAGORECON_SHOPIFY_TOKEN_<STORE> values, by name; secret")
    api_url: str = Field(default="", description="base URL instead of https://<shop_domain> ($PAGORECON_SHOPIFY_API_URL); "
                         "empty: the shop's own")

    def token_for(self, store_id: str) -> str:
        """The store's token; a missing one is a ConfigError naming the variable (never a value)."""
        name = f"{SHOPIFY_TOKEN_PREFIX}{store_id.upper()}"
        token = value(self.tokens.get(name)).strip()
        if not token:
            raise ConfigError(f"store {store_id!r}: {name} is not set; put the Admin API access token of the "
                              "store's Shopify custom app in it")
        return token

    def base_url(self, shop_domain: str | None) -> str:
        return value(self.api_url).strip().rstrip("/") or f"https://{shop_domain}"


class WooCommerceApi(dg.ConfigurableResource):
    """WooCommerce REST API consumer keys per store: `PAGORECON_WOO_KEY_<STORE>` and
    `PAGORECON_WOO_SECRET_<STORE>` (stores/woocommerce.py). Both are secret."""

    variables: dict[str, str] = Field(default_factory=dict, repr=False,
                                      description="PAGORECON_WOO_KEY_<STORE> and PAGORECON_WOO_SECRET_<STORE> values, by name")

    def credentials_for(self, store_id: str) -> woocommerce.WooCredentials:
        return woocommerce.credentials_for(store_id, {name: value(field) for name, field in self.variables.items()})


class BcrpApi(dg.ConfigurableResource):
    """The BCRP statistics API, where the SBS rates are fetched from (rates/bcrp.py). Public: no key."""

    base_url: str = Field(default="", description=f"the API's base URL (${BCRP_URL_ENV}); empty: {DEFAULT_BCRP_URL}")

    def client(self, **tuning: Any) -> BcrpClient:
        return BcrpClient(value(self.base_url).strip() or DEFAULT_BCRP_URL, **tuning)


def _env_var(name: str, default: str = "") -> Any:
    """`EnvVar(name)` when the variable is set, else the default (an unset EnvVar fails a run)."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else default


def alert_channel_from_environment() -> AlertChannel:
    """The webhook of `$PAGORECON_ALERT_WEBHOOK_URL` when it is set; without it, the log alone."""
    return AlertChannel(webhook_url=_env_var(WEBHOOK_ENV))


def warehouse_from_environment(settings: Settings) -> Warehouse:
    return Warehouse(home=str(settings.home), memory_limit=_env_var(MEMORY_LIMIT_ENV))


def refund_provider_from_environment() -> RefundProvider:
    return RefundProvider(url=_env_var(URL_ENV), key=_env_var(KEY_ENV), timeout_seconds=_env_var(TIMEOUT_ENV),
                          executor=_env_var(EXECUTOR_ENV))


def pagoefectivo_from_environment() -> PagoEfectivoApi:
    names = sorted(name for name in os.environ if name.startswith(credentials.ENV_PREFIX))
    return PagoEfectivoApi(variables={name: _env_var(name) for name in names if os.environ[name].strip()})


def shopify_from_environment() -> ShopifyApi:
    names = sorted(name for name in os.environ if name.startswith(SHOPIFY_TOKEN_PREFIX) and os.environ[name].strip())
    return ShopifyApi(tokens={name: _env_var(name) for name in names}, api_url=_env_var(SHOPIFY_API_URL_ENV))


def woocommerce_from_environment() -> WooCommerceApi:
    prefixes = (woocommerce.KEY_ENV_PREFIX, woocommerce.SECRET_ENV_PREFIX)
    names = sorted(name for name in os.environ if name.startswith(prefixes) and os.environ[name].strip())
    return WooCommerceApi(variables={name: _env_var(name) for name in names})


def from_environment(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of a deployment, by key, configured from its environment variables."""
    return {
        WAREHOUSE: warehouse_from_environment(settings),
        REFUND_PROVIDER: refund_provider_from_environment(),
        PAGOEFECTIVO: pagoefectivo_from_environment(),
        SHOPIFY: shopify_from_environment(),
        WOOCOMMERCE: woocommerce_from_environment(),


        BCRP: BcrpApi(base_url=_env_var(BCRP_URL_ENV)),
    }


# Celery (pagorecon_dagster/celery_workers.py): the broker's URL may hold a password, so it comes
# from the environment only; the queue the code location and the workers share.
CELERY_BROKER_ENV, CELERY_QUEUE_ENV, DEFAULT_CELERY_QUEUE = "PAGORECON_CELERY_BROKER", "PAGORECON_CELERY_QUEUE", "dagster"


def celery_broker_from_environment() -> str:
    broker = os.environ.get(CELERY_BROKER_ENV, "").strip()
    if not broker:
        raise RuntimeError(f"${CELERY_BROKER_ENV} is not set: the Celery broker's URL, like pyamqp://guest@127.0.0.1:5672//")
    return broker


def celery_queue_from_environment() -> str:
    return os.environ.get(CELERY_QUEUE_ENV, "").strip() or DEFAULT_CELERY_QUEUE
