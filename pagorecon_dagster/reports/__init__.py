"""Finance reports: daily per store, all stores per date, month close."""
