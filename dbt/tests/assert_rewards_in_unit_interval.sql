-- A matured decision has a reward in [0, 1]; a pending one has none.
select
    decision_id,
    status,
    reward
from {{ ref('int_decisions_attributed') }}
where
    (status = 'matured' and (reward is null or reward < 0 or reward > 1))
    or (status = 'pending' and reward is not null)
