-- Arms with their parameters exploded to columns (null when the campaign does not vary it).
select
    arm_id,
    campaign_id,
    arm_key,
    params,
    params ->> 'offer_type' as offer_type,
    params ->> 'discount' as discount,
    coalesce(params ->> 'channel', channel) as channel,
    params ->> 'time_of_day' as time_of_day,
    params ->> 'day_of_week' as day_of_week,
    params ->> 'cta' as cta,
    is_default,
    active
from {{ source('ops', 'arms') }}
