-- One row per matured decision: the logged context (customer at decision time, arm
-- parameters), the logged action and its propensity, and the observed reward.
-- Incremental on decision_id: the decisions int_decisions_attributed rewrote since this model's
-- last build are inserted again when matured (replacing their row), deleted when pending (the
-- pre-hook: pending again after a re-run of an earlier day, or held). A column added by a release
-- is appended (rows built before it hold null there), as in int_decisions_segmented.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='decision_id',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['decision_id'], 'unique': true},
        {'columns': ['campaign_id', 'decision_date']},
        {'columns': ['built_as_of']},
    ],
    pre_hook="{{ delete_rewritten_training_examples() }}",
) }}

with attributed as (
    select * from {{ ref('int_decisions_attributed') }}
    where
        status = 'matured'
        {%- if is_incremental() %}
            and built_as_of >= {{ first_unread_day(this) }}
        {%- endif %}
),

segmented as (
    select * from {{ ref('int_decisions_segmented') }}
    {%- if is_incremental() %}
        where decision_date in (select attributed.decision_date from attributed)
    {%- endif %}
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
    s.extra_features,
    r.offer_type,
    r.discount,
    r.channel,
    r.time_of_day,
    r.day_of_week,
    r.cta,
    {{ as_of_date() }} as built_as_of
from attributed as a
inner join segmented as s on a.decision_id = s.decision_id
inner join arms as r on a.arm_id = r.arm_id
