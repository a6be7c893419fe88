-- sqlfluff:indentation:template_blocks_indent:false
-- Per campaign and decision date: conversion rates of treatment and control (conversions
-- attributed so far), lift with a 95% CI (normal approximation; relative lift by the log
-- risk-ratio method), exploration rate, channel cost, revenue and ROI.
-- Incremental by decision date, as int_arm_segment_daily: each day with a decision
-- int_decisions_attributed rewrote since this model's last build is recomputed whole.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='kpi_date',
    on_schema_change='fail',
    indexes=[
        {'columns': ['campaign_id', 'kpi_date'], 'unique': true},
        {'columns': ['kpi_date']},
        {'columns': ['built_as_of']},
    ],
    pre_hook="{% if is_incremental() %}delete from {{ this }} where kpi_date >= {{ as_of_date() }}{% endif %}",
) }}

{%- if is_incremental() %}
with touched_days as (
    {{ rewritten_days() }}
),

{%- else %}
with
{%- endif %}

decisions as (
    select
        a.campaign_id,
        a.decision_date,
        a.treatment_group,
        a.explored,
        a.converted,
        a.revenue,
        a.status,
        coalesce(cast(c.channel_costs ->> r.channel as numeric), 0) as cost
    from {{ ref('int_decisions_attributed') }} as a
    inner join {{ ref('stg_ops__campaigns') }} as c on a.campaign_id = c.campaign_id
    inner join {{ ref('stg_ops__arms') }} as r on a.arm_id = r.arm_id
    {%- if is_incremental() %}
    where a.decision_date in (select touched_days.decision_date from touched_days)
    {%- endif %}
),

daily as (
    select
        campaign_id,
        decision_date as kpi_date,
        count(*) as sends,
        count(*) filter (where treatment_group = 'treatment') as treatment_sends,
        count(*) filter (
            where treatment_group = 'treatment' and converted
        ) as treatment_conversions,
        count(*) filter (where treatment_group = 'control') as control_sends,
        count(*) filter (
            where treatment_group = 'control' and converted
        ) as control_conversions,
        count(*) filter (
            where treatment_group = 'treatment' and explored
        ) as treatment_explored,
        count(*) filter (where status = 'pending') as pending,
        sum(cost) as cost,
        sum(revenue) as revenue
    from decisions
    group by campaign_id, decision_date
),

rates as (
    select
        *,
        cast(treatment_conversions as float8) / nullif(treatment_sends, 0) as treatment_cr,
        cast(control_conversions as float8) / nullif(control_sends, 0) as control_cr
    from daily
),

lifts as (
    select
        *,
        treatment_cr - control_cr as abs_lift,
        treatment_cr / nullif(control_cr, 0) - 1 as rel_lift,
        sqrt(
            treatment_cr * (1 - treatment_cr) / nullif(treatment_sends, 0)
            + control_cr * (1 - control_cr) / nullif(control_sends, 0)
        ) as abs_lift_se,
        sqrt(
            1.0 / nullif(treatment_conversions, 0) - 1.0 / nullif(treatment_sends, 0)
            + 1.0 / nullif(control_conversions, 0) - 1.0 / nullif(control_sends, 0)
        ) as log_rr_se
    from rates
)

select
    campaign_id,
    kpi_date,
    sends,
    treatment_sends,
    treatment_conversions,
    treatment_cr,
    control_sends,
    control_conversions,
    control_cr,
    abs_lift,
    abs_lift - 1.959964 * abs_lift_se as abs_lift_ci_low,
    abs_lift + 1.959964 * abs_lift_se as abs_lift_ci_high,
    rel_lift,
    case
        when log_rr_se is not null
            then exp(ln(treatment_cr / control_cr) - 1.959964 * log_rr_se) - 1
    end as rel_lift_ci_low,
    case
        when log_rr_se is not null
            then exp(ln(treatment_cr / control_cr) + 1.959964 * log_rr_se) - 1
    end as rel_lift_ci_high,
    cast(treatment_explored as float8) / nullif(treatment_sends, 0) as exploration_rate,
    cost,
    revenue,
    (revenue - cost) / nullif(cost, 0) as roi,
    pending,
    {{ as_of_date() }} as built_as_of
from lifts
