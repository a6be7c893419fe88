-- The feedback source-days held out of learning now (pipelines/anomalies.py): until a person
-- releases one, the decisions of its channel whose attribution window covers its day stay pending
-- (int_decisions_attributed). A hold is current state, not as of the run's day: a rebuild of an
-- earlier day after the release learns from them.
select distinct
    channel,
    logical_date
from {{ source('ops', 'feedback_holds') }}
where released_at is null
