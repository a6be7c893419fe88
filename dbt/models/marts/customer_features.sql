{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- One row per customer as of the logical date: demographics from the latest snapshot, the
-- segment by the rule of pipelines.domain.segment_of (macros/segment_of.sql), and engagement
-- over the 90 days ending on as_of_date (as_of_date - 89 .. as_of_date, inclusive), from
-- decisions made before as_of_date and their events landed by then.
with customers as (
    select * from {{ ref('stg_raw__customers') }}
),

sends as (
    select
        customer_id,
        count(*) filter (
            where decision_date > {{ as_of_date() }} - 90
        ) as sends_90d,
        max(decision_date) as last_send_date
    from {{ ref('stg_ops__decisions') }}
    group by customer_id
),

decision_events as (
    -- events of known decisions only (made before as_of_date): a re-run of D sees the same
    select
        i.customer_id,
        i.decision_id,
        bool_or(i.event_type = 'open' and i.event_date > {{ as_of_date() }} - 90) as opened_90d,
        bool_or(i.event_type = 'click' and i.event_date > {{ as_of_date() }} - 90) as clicked_90d,
        count(*) filter (
            where i.event_type = 'conversion' and i.event_date > {{ as_of_date() }} - 90
        ) as conversions_90d,
        max(i.event_date) filter (where i.event_type = 'conversion') as last_conversion_date
    from {{ ref('stg_raw__interactions') }} as i
    inner join {{ ref('stg_ops__decisions') }} as d on i.decision_id = d.decision_id
    group by i.customer_id, i.decision_id
),

events as (
    select
        customer_id,
        count(*) filter (where opened_90d) as opens_90d,
        count(*) filter (where clicked_90d) as clicks_90d,
        sum(conversions_90d) as conversions_90d,
        max(last_conversion_date) as last_conversion_date
    from decision_events
    group by customer_id
)

select
    c.customer_id,
    c.snapshot_date,
    c.age,
    c.gender,
    c.income,
    c.loyalty_points,
    c.tenure_years,
    c.products_held,
    c.digital_engagement,
    c.website_visits,
    c.past_purchases,
    c.extra_features,
    {{ segment_of('c.age', 'c.income') }} as segment,
    coalesce(s.sends_90d, 0) as sends_90d,
    coalesce(e.opens_90d, 0) as opens_90d,
    coalesce(e.clicks_90d, 0) as clicks_90d,
    coalesce(e.conversions_90d, 0) as conversions_90d,
    {{ as_of_date() }} - e.last_conversion_date as days_since_last_conversion,
    {{ as_of_date() }} - s.last_send_date as days_since_last_send,
    {{ as_of_date() }} as as_of_date
from customers as c
left join sends as s on c.customer_id = s.customer_id
left join events as e on c.customer_id = e.customer_id
