"""Reports that reach finance: email of the all-stores report and the month closes, and the archive of every version sent."""
