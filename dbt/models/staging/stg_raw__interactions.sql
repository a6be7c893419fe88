-- Events landed up to the logical date. event_date is the UTC day of occurred_at.
with source as (
    select * from {{ source('raw', 'interactions') }}
    where logical_date <= {{ as_of_date() }}
)

select
    event_id,
    decision_id,
    customer_id,
    campaign_id,
    arm_id,
    event_type,
    value,
    occurred_at,
    cast(occurred_at at time zone 'UTC' as date) as event_date,
    logical_date,
    source_file
from source
