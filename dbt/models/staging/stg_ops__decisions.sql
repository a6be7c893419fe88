-- Decisions made before the logical date D. D's own decisions are made after D's build (the
-- decide step reads these marts), so leaving them out makes a re-run of D see what the first
-- run saw; they enter the marts on D + 1 with the events landed by then.
select
    decision_id,
    campaign_id,
    customer_id,
    arm_id,
    decision_date,
    decided_at,
    segment,
    policy,
    policy_version,
    strategy,
    phase,
    propensity,
    bandit_score,
    model_score,
    blend_score,
    selected_by,
    confidence,
    explored,
    model_version,
    treatment_group,
    source,
    seed
from {{ source('ops', 'decisions') }}
where decision_date < {{ as_of_date() }}
