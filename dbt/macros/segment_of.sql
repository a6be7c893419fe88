{#-
  Segment name '<age band>_<income band>', the SQL twin of pipelines.domain.segment_of.
  Bounds are lower-inclusive: age young < 30 <= middle < 55 <= senior;
  income low < 40000 <= mid < 100000 <= high. tests/dbt checks both agree.
-#}
{% macro segment_of(age, income) -%}
    (case
        when {{ age }} < 30 then 'young'
        when {{ age }} < 55 then 'middle'
        else 'senior'
    end || '_' || case
        when {{ income }} < 40000 then 'low'
        when {{ income }} < 100000 then 'mid'
        else 'high'
    end)
{%- endmacro %}

