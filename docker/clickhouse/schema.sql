-- The Collatz tables in ClickHouse: the contract between `petrel clickhouse-sink` (which creates
-- them if missing), `petrel api` and the Metabase cards (docker/metabase/provision.py).
-- Works on ClickHouse 18.16 (Debian's package) and on current ClickHouse: no UInt128, no
-- SimpleAggregateFunction, no insert_deduplication_token. See docker/ENVIRONMENT.md.

CREATE DATABASE IF NOT EXISTS collatz;

-- One row per step of a chain. Replays of the same Kafka records (at-least-once sink) insert the
-- same (number, step) again; ReplacingMergeTree folds them away eventually, and every query is
-- written to give the same answer before that happens (max, min, DISTINCT, uniq).
--   number      the start number n
--   step        0 for n itself, s for the value after s Collatz steps; the last step holds 1
--   value       the value at that step, as Float64 (exact up to 2^53; for plots and ordering)
--   value_text  the same value as an exact decimal string, no sign, no leading zeros
--               (values can exceed 2^64 for start numbers from 12,327,829,503 upward)
--   timestamp   the Kafka record's timestamp (seconds), so a replayed row keeps its time
CREATE TABLE IF NOT EXISTS collatz.data_series
(
    number     UInt64,
    step       UInt32,
    value      Float64,
    value_text String,
    timestamp  DateTime
)
ENGINE = ReplacingMergeTree()
ORDER BY (number, step);

-- One row per start number after merges (several partial rows before): the chain summary the
-- answers read, so they stay fast at billions of steps. Every aggregate is idempotent, so
-- replayed inserts change nothing. Read it with the -Merge combinators and GROUP BY number:
--   maxMerge(steps), maxMerge(max_value), argMaxMerge(max_value_text), minMerge(first_seen).
CREATE TABLE IF NOT EXISTS collatz.chains
(
    number         UInt64,
    steps          AggregateFunction(max, UInt32),
    max_value      AggregateFunction(max, Float64),
    max_value_text AggregateFunction(argMax, String, Float64),
    first_seen     AggregateFunction(min, DateTime),
    last_seen      AggregateFunction(max, DateTime)
)
ENGINE = AggregatingMergeTree()
ORDER BY number;

CREATE MATERIALIZED VIEW IF NOT EXISTS collatz.chains_mv TO collatz.chains AS
SELECT
    number,
    maxState(step)                 AS steps,
    maxState(value)                AS max_value,
    argMaxState(value_text, value) AS max_value_text,
    minState(timestamp)            AS first_seen,
    maxState(timestamp)            AS last_seen
FROM collatz.data_series
GROUP BY number;

-- The same rows ordered by value, so that "which chains pass through x" is an index lookup
-- instead of a full scan (it doubles the stored rows, the price of that speed). Read it with
-- value_text = 'x' plus a narrow range on value (the Float64 of x), and DISTINCT number.
CREATE TABLE IF NOT EXISTS collatz.passes_through
(
    value      Float64,
    value_text String,
    number     UInt64
)
ENGINE = ReplacingMergeTree()
ORDER BY (value, value_text, number);

CREATE MATERIALIZED VIEW IF NOT EXISTS collatz.passes_through_mv TO collatz.passes_through AS
SELECT value, value_text, number FROM collatz.data_series;
