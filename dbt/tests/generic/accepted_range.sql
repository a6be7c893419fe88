{#- Rows where column_name lies outside [min_value, max_value] (either bound optional). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
    {%- set low_op = '<' if inclusive else '<=' -%}
    {%- set high_op = '>' if inclusive else '>=' -%}
select {{ column_name }}
from {{ model }}
where
    false
    {%- if min_value is not none %}
    or {{ column_name }} {{ low_op }} {{ min_value }}
    {%- endif %}
    {%- if max_value is not none %}
    or {{ column_name }} {{ high_op }} {{ max_value }}
    {%- endif %}
{% endtest %}
