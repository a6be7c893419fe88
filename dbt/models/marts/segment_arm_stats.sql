{{ config(indexes=[{'columns': ['campaign_id', 'segment', 'arm_id'], 'unique': true}]) }}
-- arm_stats per customer segment at decision time, for (segment, arm) pairs with decisions;
-- a pair without a row has no data yet (alpha = beta = 1).
with decisions as (
    select
        a.campaign_id,
        a.arm_id,
        s.segment,
        a.status,
        a.opened,
        a.clicked,
        a.converted,
        a.revenue,
        a.reward
    from {{ ref('int_decisions_attributed') }} as a
    inner join {{ ref('int_decisions_segmented') }} as s on a.decision_id = s.decision_id
),

per_segment_arm as (
    select
        campaign_id,
        segment,
        arm_id,
        count(*) as sends,
        count(*) filter (where status = 'matured') as matured,
        count(*) filter (where status = 'pending') as pending,
        count(*) filter (where opened) as opens,
        count(*) filter (where clicked) as clicks,
        count(*) filter (where converted) as conversions,
        sum(revenue) as revenue,
        coalesce(sum(reward), 0) as reward_sum
    from decisions
    group by campaign_id, segment, arm_id
)

select
    campaign_id,
    segment,
    arm_id,
    sends,
    matured,
    pending,
    opens,
    clicks,
    conversions,
    revenue,
    reward_sum,
    1 + reward_sum as alpha,
    1 + matured - reward_sum as beta
from per_segment_arm
