-- SBS rates, PEN per unit of `currency`: the latest published figure for each date.
SELECT date, currency, buy, sell
FROM (
    SELECT r.*, row_number() OVER (PARTITION BY date, currency ORDER BY file_seq DESC, line DESC) AS version
    FROM fx_rate_rows AS r
)
WHERE version = 1
ORDER BY currency, date
