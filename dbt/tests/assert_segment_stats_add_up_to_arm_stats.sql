-- Summing segment_arm_stats over segments gives arm_stats back.
with by_segment as (
    select
        arm_id,
        sum(sends) as sends,
        sum(matured) as matured,
        sum(conversions) as conversions,
        sum(reward_sum) as reward_sum
    from {{ ref('segment_arm_stats') }}
    group by arm_id
)

select
    a.arm_id,
    a.sends,
    s.sends as segment_sends
from {{ ref('arm_stats') }} as a
inner join by_segment as s on a.arm_id = s.arm_id
where
    a.sends != s.sends
    or a.matured != s.matured
    or a.conversions != s.conversions
    -- Weighted rewards are float sums: the order of addition differs between the two marts.
    or abs(a.reward_sum - s.reward_sum) > 1e-6
