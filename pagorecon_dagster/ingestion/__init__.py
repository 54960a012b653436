"""Landing files -> validated rows in the warehouse, with quarantine and an audit of every file."""
