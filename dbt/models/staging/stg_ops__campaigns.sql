-- Campaigns with reward, costs and attribution read from definition (CampaignSpec.as_json()).
-- Missing keys fall back to the CampaignSpec defaults. The attribution window is in whole days
-- (attribution_window_days, the calendar-day rule) or, for a window given in minutes or hours
-- ('30m', '4h': exact timestamps), in attribution_window_seconds; the other one is null
-- (pipelines/attribution.py).
with source as (
    select
        *,
        definition ->> 'attribution_window' as window_text,
        coalesce(
            definition -> 'reward' -> 'weights',
            cast('{"click": 0.2, "view": 0.1, "dwell": 0.1, "conversion": 1.0}' as jsonb)
        ) as reward_weights,
        coalesce(definition -> 'channel_costs', cast('{}' as jsonb)) as channel_costs_json
    from {{ source('ops', 'campaigns') }}
)

select
    campaign_id,
    name as campaign_name,
    start_date,
    end_date,
    policy,
    holdout_share,
    checksum,
    case
        when window_text is null
            then coalesce(cast(definition ->> 'attribution_window_days' as integer), attribution_window_days)
    end as attribution_window_days,
    cast(left(window_text, -1) as integer)
    * case right(window_text, 1) when 'm' then 60 when 'h' then 3600 end as attribution_window_seconds,
    coalesce(cast(definition ->> 'default_reward' as double precision), 0) as default_reward,
    coalesce(definition -> 'reward' ->> 'kind', 'conversion') as reward_kind,
    coalesce(cast(reward_weights ->> 'open' as numeric), 0) as weight_open,
    coalesce(cast(reward_weights ->> 'click' as numeric), 0) as weight_click,
    coalesce(cast(reward_weights ->> 'view' as numeric), 0) as weight_view,
    coalesce(cast(reward_weights ->> 'dwell' as numeric), 0) as weight_dwell,
    coalesce(cast(reward_weights ->> 'conversion' as numeric), 0) as weight_conversion,
    coalesce(cast(definition -> 'reward' ->> 'conversion_value' as numeric), 100) as conversion_value,
    channel_costs_json as channel_costs,
    coalesce(cast(channel_costs_json ->> 'email' as numeric), 0) as cost_email,
    coalesce(cast(channel_costs_json ->> 'sms' as numeric), 0) as cost_sms,
    coalesce(cast(channel_costs_json ->> 'app_push' as numeric), 0) as cost_app_push,
    coalesce(cast(channel_costs_json ->> 'online_banking_alert' as numeric), 0) as cost_online_banking_alert,
    coalesce(cast(channel_costs_json ->> 'branch' as numeric), 0) as cost_branch
from source
