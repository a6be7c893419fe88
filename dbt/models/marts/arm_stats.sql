{{ config(indexes=[{'columns': ['campaign_id', 'arm_id'], 'unique': true}]) }}
-- One row per arm (arms never sent included, at the Beta(1, 1) prior). Counts cover every
-- decision (treatment and control, batch and real time); the posterior uses matured ones only.
with arms as (
    select
        arm_id,
        campaign_id,
        arm_key,
        active
    from {{ ref('stg_ops__arms') }}
),

per_arm as (
    -- sums of the daily counts (int_arm_segment_daily), so the cost grows with days, not sends
    select
        arm_id,
        {{ sum_of_daily_counts() }}
    from {{ ref('int_arm_segment_daily') }}
    group by arm_id
)

select
    a.campaign_id,
    a.arm_id,
    a.arm_key,
    a.active,
    coalesce(p.sends, 0) as sends,
    coalesce(p.matured, 0) as matured,
    coalesce(p.pending, 0) as pending,
    coalesce(p.opens, 0) as opens,
    coalesce(p.clicks, 0) as clicks,
    coalesce(p.conversions, 0) as conversions,
    coalesce(p.revenue, 0) as revenue,
    coalesce(p.reward_sum, 0) as reward_sum,
    1 + coalesce(p.reward_sum, 0) as alpha,
    1 + coalesce(p.matured, 0) - coalesce(p.reward_sum, 0) as beta
from arms as a
left join per_arm as p on a.arm_id = p.arm_id
