{{ config(indexes=[{'columns': ['campaign_id', 'segment', 'arm_id'], 'unique': true}]) }}
-- arm_stats per customer segment at decision time, for (segment, arm) pairs with decisions;
-- a pair without a row has no data yet (alpha = beta = 1).
with per_segment_arm as (
    -- sums of the daily counts (int_arm_segment_daily), so the cost grows with days, not sends
    select
        campaign_id,
        segment,
        arm_id,
        {{ sum_of_daily_counts() }}
    from {{ ref('int_arm_segment_daily') }}
    group by campaign_id, segment, arm_id
)

select
    campaign_id,
    segment,
    arm_id,
    sends,
    matured,
    pending,
    opens,
    clicks,
    conversions,
    revenue,
    reward_sum,
    1 + reward_sum as alpha,
    1 + matured - reward_sum as beta
from per_segment_arm
