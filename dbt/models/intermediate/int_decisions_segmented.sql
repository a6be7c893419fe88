-- Each decision with the customer as seen on the decision date: the snapshot valid then, and
-- the segment (ops.decisions.segment when recorded, else the segment_of rule on that snapshot,
-- else 'unknown' when no snapshot precedes the decision).
-- Incremental: a decision's row depends on snapshots of its decision date or earlier only, which
-- have landed by then, so a build adds the decisions of the last day in the table (again: a late
-- real-time decision of that day) and later. The pre-hook first deletes decisions of the run's
-- day or later, which a re-run of an earlier day does not see yet. A column added by a release
-- (extra_features, migration 0012) is appended: rows built before it hold null there.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='decision_id',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['decision_id'], 'unique': true},
        {'columns': ['decision_date']},
    ],
    pre_hook="{% if is_incremental() %}delete from {{ this }} where decision_date >= {{ as_of_date() }}{% endif %}",
) }}

with decisions as (
    select
        decision_id,
        customer_id,
        decision_date,
        segment
    from {{ ref('stg_ops__decisions') }}
    {%- if is_incremental() %}
        where decision_date >= (
                select coalesce(max(t.decision_date), cast('-infinity' as date)) from {{ this }} as t
            )
    {%- endif %}
),

snapshots as (
    select * from {{ ref('stg_raw__customer_snapshots') }}
    {%- if is_incremental() %}
        where valid_to > (select min(decisions.decision_date) from decisions)
    {%- endif %}
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
    s.past_purchases,
    s.extra_features,
    {{ as_of_date() }} as built_as_of
from decisions as d
left join snapshots as s
    on
        d.customer_id = s.customer_id
        and d.decision_date >= s.valid_from
        and d.decision_date < s.valid_to
