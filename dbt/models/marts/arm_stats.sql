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
    select
        arm_id,
        count(*) as sends,
        count(*) filter (where status = 'matured') as matured,
        count(*) filter (where status = 'pending') as pending,
        count(*) filter (where opened) as opens,
        count(*) filter (where clicked) as clicks,
        count(*) filter (where converted) as conversions,
        sum(revenue) as revenue,
        coalesce(sum(reward), 0) as reward_sum
    from {{ ref('int_decisions_attributed') }}
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
