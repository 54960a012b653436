"""pagorecon: reconcile PagoEfectivo payments against online-store orders, per store and Lima day."""

__version__ = "0.1.0"
