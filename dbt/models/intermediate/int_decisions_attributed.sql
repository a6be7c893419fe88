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
with decisions as not materialized (
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
    end as reward
from with_holds
