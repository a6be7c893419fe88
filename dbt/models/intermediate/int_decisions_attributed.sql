-- sqlfluff:indentation:template_blocks_indent:false
-- Each decision with the events attributed to it (pipelines/attribution.py). A day window: those
-- of its decision_id whose UTC day falls in [decision_date, decision_date + attribution_window_days];
-- it matures when day window_end_date is over. A minute or hour window: those with occurred_at in
-- [decided_at, decided_at + attribution_window_seconds], maturing at that instant. A decision is
-- 'matured' once it matured by the run's cut-off, the end of as_of_date (for day windows:
-- window_end_date <= as_of_date); otherwise it is 'pending' and its reward is null (unknown yet,
-- not a failure). An early conversion does not mature a send: counting young successes but not
-- young failures would inflate the rates of recently sent arms. A matured decision without any
-- attributed event gets the campaign's default_reward (0 unless set). Import CTEs read twice are
-- inlined (not materialized) so the planner sees real row estimates. A decision whose window covers
-- a feedback source-day held for its channel (stg_ops__feedback_holds) is 'pending' and ``held``
-- until the hold is released: its events of that day are not trusted, nor their absence.
--
-- Incremental (delete+insert on decision_id): a build for day D recomputes only the decisions
-- whose row may differ from what a full refresh gives (the `changed` CTE), with since = the last
-- decision day in the table (never after D: the pre-hook first deletes decisions of D or later,
-- which a re-run of an earlier day does not see yet):
--   - decisions of since or later (new ones),
--   - decisions with an attributable event landed on since or later (late events included),
--   - rows stored 'pending' that mature by this run's cut-off or were held (their hold may have
--     been released); a pending row whose window is still open and that got no new event is the
--     same row again (at bank size the open windows hold a week of decisions: 14M rows a day),
--   - rows built for a later day than D (a re-run of an earlier day: they saw later events),
--   - rows whose window covers an open hold of their channel (a new hold),
--   - every decision of a campaign whose definition changed (its checksum).
-- Nested loops are off for this build: the planner estimates the `changed` CTE and the events
-- joined to it at a few rows (CTE statistics) and looped 39,000 decisions over ~20,000 aggregated
-- event rows each (117 s instead of 0.5 s with hash joins; benchmarks/bench_bank_day.py, 20k customers).
-- Every other row is matured, saw all its events and stays as it is. built_as_of is the day of
-- the build that last wrote the row: the daily aggregates downstream re-add the days it touched.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='decision_id',
    on_schema_change='fail',
    indexes=[
        {'columns': ['decision_id'], 'unique': true},
        {'columns': ['decision_date']},
        {'columns': ['built_as_of']},
        {'columns': ['status']},
        {'columns': ['window_end_date']},
        {'columns': ['campaign_id', 'campaign_checksum']},
    ],
    pre_hook=[
        "{% if is_incremental() %}delete from {{ this }} where decision_date >= {{ as_of_date() }}{% endif %}",
        "set local enable_nestloop = off",
    ],
) }}

with
{%- if is_incremental() %}
since as (
    select least({{ as_of_date() }}, coalesce(max(decision_date), cast('-infinity' as date))) as first_day
    from {{ this }}
),

changed_campaigns as (
    select c.campaign_id
    from {{ ref('stg_ops__campaigns') }} as c
    -- every row of a campaign has the same checksum (a change rewrites them all): read one
    where c.checksum is distinct from (
            select min(t.campaign_checksum) from {{ this }} as t
            where t.campaign_id = c.campaign_id
        )
),

changed as (
    select
        d.decision_id,
        d.decision_date
    from {{ ref('stg_ops__decisions') }} as d
    where d.decision_date >= (select since.first_day from since)
    union
    -- an event landed since, not after its decision's window (earlier ones may count)
    select
        t.decision_id,
        t.decision_date
    from {{ ref('stg_raw__interactions') }} as e
    inner join {{ this }} as t on e.decision_id = t.decision_id
    where
        e.logical_date >= (select since.first_day from since)
        and e.event_date <= t.window_end_date
    union
    select
        t.decision_id,
        t.decision_date
    from {{ this }} as t
    where
        (t.status = 'pending' and (t.matures_at <= {{ run_cutoff() }} or t.held))
        or t.built_as_of > {{ as_of_date() }}
    union
    select
        t.decision_id,
        t.decision_date
    from {{ this }} as t
    inner join {{ ref('stg_ops__feedback_holds') }} as h
        on
            t.channel = h.channel
            and h.logical_date between t.decision_date and t.window_end_date
    union
    select
        d.decision_id,
        d.decision_date
    from {{ ref('stg_ops__decisions') }} as d
    where d.campaign_id in (select changed_campaigns.campaign_id from changed_campaigns)
),
{%- endif %}

decisions as not materialized (
    select
        d.decision_id,
        d.campaign_id,
        d.customer_id,
        d.arm_id,
        d.decision_date,
        d.decided_at,
        d.treatment_group,
        d.source,
        d.explored,
        d.propensity,
        d.policy,
        d.model_version,
        coalesce(r.channel, 'none') as channel
    from {{ ref('stg_ops__decisions') }} as d
    left join {{ ref('stg_ops__arms') }} as r on d.arm_id = r.arm_id
    {%- if is_incremental() %}
    -- the date bound lets the BRIN index of ops.decisions skip older days
    where
        d.decision_date >= (select min(changed.decision_date) from changed)
        and d.decision_id in (select changed.decision_id from changed)
    {%- endif %}
),

holds as (
    select
        channel,
        logical_date
    from {{ ref('stg_ops__feedback_holds') }}
),

campaigns as not materialized (
    select
        campaign_id,
        checksum,
        attribution_window_days,
        attribution_window_seconds * interval '1 second' as window_length,
        coalesce(default_reward, 0) as default_reward,
        reward_kind,
        weight_open,
        weight_click,
        weight_view,
        weight_dwell,
        weight_conversion,
        conversion_value
    from {{ ref('stg_ops__campaigns') }}
),

events as (
    select
        decision_id,
        event_type,
        value,
        occurred_at,
        event_date
    from {{ ref('stg_raw__interactions') }}
    {%- if is_incremental() %}
    -- an attributable event occurred on or after its decision's day (or decided_at), and
    -- lands on its UTC day or later, or the day before (D's inbox holds D + 1's first hour)
    where logical_date >= (
            select
                least(
                    min(decisions.decision_date), min(cast(decisions.decided_at at time zone 'UTC' as date))
                ) - 1
            from decisions
        )
    {%- endif %}
),

attributed_events as (
    select
        d.decision_id,
        e.event_type,
        case
            when e.event_type != 'conversion' then 0
            when e.value > 0 then e.value
            else c.conversion_value
        end as revenue
    from decisions as d
    inner join campaigns as c on d.campaign_id = c.campaign_id
    inner join events as e on d.decision_id = e.decision_id
    where
        case
            when c.window_length is null
                then
                    e.event_date >= d.decision_date
                    and e.event_date <= d.decision_date + c.attribution_window_days
            else e.occurred_at >= d.decided_at and e.occurred_at <= d.decided_at + c.window_length
        end
),

event_flags as (
    select
        decision_id,
        bool_or(event_type = 'open') as opened,
        bool_or(event_type = 'click') as clicked,
        bool_or(event_type = 'view') as viewed,
        bool_or(event_type = 'dwell') as dwelled,
        bool_or(event_type = 'conversion') as converted,
        count(*) as n_events,
        count(*) filter (where event_type = 'conversion') as n_conversions,
        sum(revenue) as revenue
    from attributed_events
    group by decision_id
),

flagged as (
    select
        d.decision_id,
        d.campaign_id,
        d.customer_id,
        d.arm_id,
        d.decision_date,
        d.treatment_group,
        d.source,
        d.explored,
        d.propensity,
        d.policy,
        d.model_version,
        d.channel,
        c.checksum,
        c.reward_kind,
        c.attribution_window_days,
        c.default_reward,
        coalesce(
            d.decision_date + c.attribution_window_days,
            cast((d.decided_at + c.window_length) at time zone 'UTC' as date)
        ) as window_end_date,
        case
            when c.window_length is null
                then cast(d.decision_date + c.attribution_window_days + 1 as timestamp) at time zone 'UTC'
            else d.decided_at + c.window_length
        end as matures_at,
        coalesce(f.n_events, 0) as n_events,
        coalesce(f.opened, false) as opened,
        coalesce(f.clicked, false) as clicked,
        coalesce(f.viewed, false) as viewed,
        coalesce(f.dwelled, false) as dwelled,
        coalesce(f.converted, false) as converted,
        coalesce(f.n_conversions, 0) as n_conversions,
        cast(coalesce(f.revenue, 0) as double precision) as revenue,
        c.weight_open * cast(coalesce(f.opened, false) as integer)
        + c.weight_click * cast(coalesce(f.clicked, false) as integer)
        + c.weight_view * cast(coalesce(f.viewed, false) as integer)
        + c.weight_dwell * cast(coalesce(f.dwelled, false) as integer)
        + c.weight_conversion * cast(coalesce(f.converted, false) as integer)
            as engagement_score
    from decisions as d
    inner join campaigns as c on d.campaign_id = c.campaign_id
    left join event_flags as f on d.decision_id = f.decision_id
),

with_holds as (
    select
        f.*,
        exists(
            select 1 from holds as h
            where
                h.channel = f.channel
                and h.logical_date between f.decision_date and f.window_end_date
        ) as held
    from flagged as f
)

select
    decision_id,
    campaign_id,
    customer_id,
    arm_id,
    decision_date,
    treatment_group,
    source,
    explored,
    propensity,
    policy,
    model_version,
    channel,
    checksum as campaign_checksum,
    reward_kind,
    attribution_window_days,
    window_end_date,
    matures_at,
    opened,
    clicked,
    viewed,
    dwelled,
    converted,
    n_conversions,
    n_events,
    revenue,
    held,
    case
        when matures_at <= {{ run_cutoff() }} and not held then 'matured'
        else 'pending'
    end as status,
    case
        when matures_at > {{ run_cutoff() }} or held then null
        when n_events = 0 then default_reward
        when reward_kind = 'conversion' then cast(converted as integer)
        else cast(least(1, engagement_score) as double precision)
    end as reward,
    {{ as_of_date() }} as built_as_of
from with_holds
