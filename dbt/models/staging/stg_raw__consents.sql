-- One row per (customer, channel): the latest consent recorded on or before the logical date (UTC).
with ranked as (
    select
        *,
        row_number() over (
            partition by customer_id, channel order by recorded_at desc
        ) as record_rank
    from {{ source('raw', 'consents') }}
    where cast(recorded_at at time zone 'UTC' as date) <= {{ as_of_date() }}
)

select
    customer_id,
    channel,
    granted,
    recorded_at
from ranked
where record_rank = 1
