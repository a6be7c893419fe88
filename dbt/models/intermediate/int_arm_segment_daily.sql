-- sqlfluff:indentation:template_blocks_indent:false
-- Decision counts and reward sums per (campaign, segment at decision time, arm, decision date):
-- arm_stats and segment_arm_stats are their sums. Incremental by decision date (delete+insert):
-- a build recomputes, whole, each day with a decision int_decisions_attributed rewrote since this
-- model's last build (built_as_of), so a day is never patched, only replaced. The pre-hook deletes
-- days of the run's day or later, which a re-run of an earlier day does not see yet.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='decision_date',
    on_schema_change='fail',
    indexes=[
        {'columns': ['decision_date']},
        {'columns': ['built_as_of']},
    ],
    pre_hook="{% if is_incremental() %}delete from {{ this }} where decision_date >= {{ as_of_date() }}{% endif %}",
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
        a.arm_id,
        a.decision_date,
        s.segment,
        a.status,
        a.opened,
        a.clicked,
        a.converted,
        a.revenue,
        a.reward
    from {{ ref('int_decisions_attributed') }} as a
    inner join {{ ref('int_decisions_segmented') }} as s on a.decision_id = s.decision_id
    {%- if is_incremental() %}
    where
        a.decision_date in (select touched_days.decision_date from touched_days)
        and s.decision_date in (select touched_days.decision_date from touched_days)
    {%- endif %}
)

select
    campaign_id,
    segment,
    arm_id,
    decision_date,
    count(*) as sends,
    count(*) filter (where status = 'matured') as matured,
    count(*) filter (where status = 'pending') as pending,
    count(*) filter (where opened) as opens,
    count(*) filter (where clicked) as clicks,
    count(*) filter (where converted) as conversions,
    sum(revenue) as revenue,
    coalesce(sum(reward), 0) as reward_sum,
    {{ as_of_date() }} as built_as_of
from decisions
group by campaign_id, segment, arm_id, decision_date
