-- Every customer snapshot up to the logical date with its validity range
-- [valid_from, valid_to): what a decision on day d saw is the row with valid_from <= d < valid_to.
with source as (
    select * from {{ source('raw', 'customers') }}
    where snapshot_date <= {{ as_of_date() }}
)

select
    customer_id,
    snapshot_date,
    snapshot_date as valid_from,
    coalesce(
        lead(snapshot_date) over (partition by customer_id order by snapshot_date),
        cast('infinity' as date)
    ) as valid_to,
    age,
    gender,
    income,
    loyalty_points,
    tenure_years,
    products_held,
    digital_engagement,
    website_visits,
    past_purchases,
    extra_features,
    {{ segment_of('age', 'income') }} as segment
from source
