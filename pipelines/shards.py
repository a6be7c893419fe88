"""Customer-hash shards and buckets: how the decide step is partitioned.

Every customer has a fixed *shard*, 0..N_SHARDS-1, from a hash of their id. The shard is the
unit of the decide step's randomness: its customers are decided with a generator seeded by
(campaign, day, shard), in customer-id order. A *bucket* is a unit of work: bucket b of B holds
the shards s with s % B == b. So the list (every customer's arm and propensity) is the same for
any bucket count and any order in which buckets finish; only the work is split differently.
"""

from __future__ import annotations

N_SHARDS = 64  # also the largest bucket count (each shard costs one policy call: ~40 ms fixed)

# The customer's shard, computed by PostgreSQL where the customers are read (the first 32 bits
# of md5, modulo N_SHARDS); "shard:" keeps it independent of the holdout hash. mod(), not %,
# because these fragments go into queries with psycopg placeholders.
_SHARD_SQL = "mod(('x' || substr(md5('shard:' || {column}), 1, 8))::bit(32)::bigint, " + str(N_SHARDS) + ")"


def shard_sql(column: str) -> str:
    """SQL for the shard of the customer id in ``column``."""
    return _SHARD_SQL.format(column=column)


def in_bucket_sql(column: str) -> str:
    """SQL condition: the customer in ``column`` is in bucket %(bucket)s of %(n_buckets)s."""
    return f"(%(n_buckets)s = 1 or mod({shard_sql(column)}, %(n_buckets)s) = %(bucket)s)"


def check_bucket(bucket: int, n_buckets: int) -> None:
    """A clear error for a bucket count or bucket out of range."""
    if not 1 <= n_buckets <= N_SHARDS:
        raise ValueError(f"the bucket count must be between 1 and {N_SHARDS}, got {n_buckets}")
    if not 0 <= bucket < n_buckets:
        raise ValueError(f"bucket must be between 0 and {n_buckets - 1}, got {bucket}")
