"""Exchange rates from their publisher: the SBS bank-system USD rates from the BCRP statistics API,
landed as `landing/fx/` files (docs/landing-formats.md, Exchange rates)."""
