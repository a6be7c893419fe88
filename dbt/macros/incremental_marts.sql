{#- The first build day whose rewritten rows of int_decisions_attributed an incremental model
    downstream has not re-added yet: the day after its own last build L (max built_as_of; a table
    whose last build wrote nothing gives an earlier day: more work, same result), whose rows it
    read when it was built for L; but the run's day D itself when D <= L (a re-run of D, or of an
    earlier day): rows of D may have been rewritten since. -#}
{% macro first_unread_day(relation) -%}
    (select least({{ as_of_date() }}, coalesce(max(built.built_as_of) + 1, cast('-infinity' as date)))
        from {{ relation }} as built)
{%- endmacro %}

{#- Pre-hook of training_examples: delete the decisions int_decisions_attributed rewrote as
    pending since its last build (the model replaces the matured ones) and those of the run's day
    or later (a re-run of an earlier day does not see them yet). -#}
{% macro delete_rewritten_training_examples() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as t
        using {{ ref('int_decisions_attributed') }} as a
        where
            a.decision_id = t.decision_id
            and a.status = 'pending'
            and a.built_as_of >= {{ first_unread_day(this) }};
        delete from {{ this }} where decision_date >= {{ as_of_date() }}
    {%- endif -%}
{%- endmacro %}

{#- The decision days an incremental model by decision date recomputes whole: those with a
    decision int_decisions_attributed rewrote since the model's last build. -#}
{% macro rewritten_days() -%}
    select distinct rewritten.decision_date
    from {{ ref('int_decisions_attributed') }} as rewritten
    where rewritten.built_as_of >= {{ first_unread_day(this) }}
{%- endmacro %}

{#- The counts of int_arm_segment_daily summed (arm_stats, segment_arm_stats). -#}
{% macro sum_of_daily_counts() -%}
    cast(sum(sends) as bigint) as sends,
    cast(sum(matured) as bigint) as matured,
    cast(sum(pending) as bigint) as pending,
    cast(sum(opens) as bigint) as opens,
    cast(sum(clicks) as bigint) as clicks,
    cast(sum(conversions) as bigint) as conversions,
    sum(revenue) as revenue,
    sum(reward_sum) as reward_sum
{%- endmacro %}
