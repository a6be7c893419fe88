-- Each decision with the customer as seen on the decision date: the snapshot valid then, and
-- the segment (ops.decisions.segment when recorded, else the segment_of rule on that snapshot,
-- else 'unknown' when no snapshot precedes the decision).
with decisions as (
    select
        decision_id,
        customer_id,
        decision_date,
        segment
    from {{ ref('stg_ops__decisions') }}
),

snapshots as (
    select * from {{ ref('stg_raw__customer_snapshots') }}
)

select
    d.decision_id,
    d.customer_id,
    d.decision_date,
    coalesce(d.segment, s.segment, 'unknown') as segment,
    s.snapshot_date,
    s.age,
    s.gender,
    s.income,
    s.loyalty_points,
    s.tenure_years,
    s.products_held,
    s.digital_engagement,
    s.website_visits,
    s.past_purchases
from decisions as d
left join snapshots as s
    on
        d.customer_id = s.customer_id
        and d.decision_date >= s.valid_from
        and d.decision_date < s.valid_to
