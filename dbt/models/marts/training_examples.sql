{{ config(indexes=[
    {'columns': ['decision_id'], 'unique': true},
    {'columns': ['campaign_id', 'decision_date']},
]) }}
-- One row per matured decision: the logged context (customer at decision time, arm
-- parameters), the logged action and its propensity, and the observed reward.
with attributed as (
    select * from {{ ref('int_decisions_attributed') }}
    where status = 'matured'
),

segmented as (
    select * from {{ ref('int_decisions_segmented') }}
),

arms as (
    select * from {{ ref('stg_ops__arms') }}
)

select
    a.decision_id,
    a.decision_date,
    a.campaign_id,
    a.customer_id,
    a.arm_id,
    s.segment,
    a.propensity,
    a.policy,
    a.model_version,
    a.explored,
    a.treatment_group,
    a.source,
    a.reward_kind,
    a.reward,
    a.converted,
    a.revenue,
    s.snapshot_date,
    s.age,
    s.gender,
    s.income,
    s.loyalty_points,
    s.tenure_years,
    s.products_held,
    s.digital_engagement,
    s.website_visits,
    s.past_purchases,
    r.offer_type,
    r.discount,
    r.channel,
    r.time_of_day,
    r.day_of_week,
    r.cta
from attributed as a
inner join segmented as s on a.decision_id = s.decision_id
inner join arms as r on a.arm_id = r.arm_id
