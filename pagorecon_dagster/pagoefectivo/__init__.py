"""The PagoEfectivo connection: API client, notification endpoint, and the sandbox that plays it."""
