-- A matured decision has a reward in [0, 1]; a pending one has none. Rows this build wrote
-- (all of them on a full refresh): the others were checked by the build that wrote them.
select
    decision_id,
    status,
    reward
from {{ ref('int_decisions_attributed') }}
where
    built_as_of >= {{ as_of_date() }}
    and (
        (status = 'matured' and (reward is null or reward < 0 or reward > 1))
        or (status = 'pending' and reward is not null)
    )
