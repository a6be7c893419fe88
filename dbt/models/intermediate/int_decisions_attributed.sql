-- Each decision with the events attributed to it: those of its decision_id whose UTC day falls
-- in [decision_date, decision_date + attribution_window_days]. A decision is 'matured' once its
-- window has closed (window_end_date <= as_of_date); otherwise it is 'pending' and its reward is
-- null (unknown yet, not a failure). An early conversion does not mature a send: counting young
-- successes but not young failures would inflate the rates of recently sent arms. Import CTEs read twice are inlined
-- (not materialized) so the planner sees real row estimates.
with decisions as not materialized (
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
        model_version
    from {{ ref('stg_ops__decisions') }}
),

campaigns as not materialized (
    select
        campaign_id,
        attribution_window_days,
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
        e.event_date >= d.decision_date
        and e.event_date <= d.decision_date + c.attribution_window_days
),

event_flags as (
    select
        decision_id,
        bool_or(event_type = 'open') as opened,
        bool_or(event_type = 'click') as clicked,
        bool_or(event_type = 'view') as viewed,
        bool_or(event_type = 'dwell') as dwelled,
        bool_or(event_type = 'conversion') as converted,
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
        c.reward_kind,
        c.attribution_window_days,
        d.decision_date + c.attribution_window_days as window_end_date,
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
    opened,
    clicked,
    viewed,
    dwelled,
    converted,
    n_conversions,
    revenue,
    case
        when window_end_date <= {{ as_of_date() }} then 'matured'
        else 'pending'
    end as status,
    case
        when window_end_date > {{ as_of_date() }} then null
        when reward_kind = 'conversion' then cast(converted as integer)
        else cast(least(1, engagement_score) as double precision)
    end as reward
from flagged
