-- Beta posteriors never fall below the Beta(1, 1) prior, and sends = matured + pending.
select
    'arm_stats' as mart,
    campaign_id,
    arm_id,
    alpha,
    beta
from {{ ref('arm_stats') }}
where alpha < 1 or beta < 1 or sends != matured + pending
union all
select
    'segment_arm_stats' as mart,
    campaign_id,
    arm_id,
    alpha,
    beta
from {{ ref('segment_arm_stats') }}
where alpha < 1 or beta < 1 or sends != matured + pending
