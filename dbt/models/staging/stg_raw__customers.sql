-- One row per customer: the latest snapshot on or before the logical date.
with ranked as (
    select
        *,
        row_number() over (partition by customer_id order by snapshot_date desc) as snapshot_rank
    from {{ source('raw', 'customers') }}
    where snapshot_date <= {{ as_of_date() }}
)

select
    customer_id,
    snapshot_date,
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
    source_file
from ranked
where snapshot_rank = 1
