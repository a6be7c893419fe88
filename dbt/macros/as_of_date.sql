{#- The logical date of the run as a SQL date literal. Required: fail with one line when missing. -#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if execute and (value is none or value | string | trim == '') -%}
        {{ exceptions.raise_compiler_error("var as_of_date is required (--vars '{as_of_date: YYYY-MM-DD}')") }}
    {%- endif -%}
    {%- if execute -%}
        {%- set text = value | string | trim -%}
        {%- if modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) is none -%}
            {{ exceptions.raise_compiler_error("var as_of_date must be YYYY-MM-DD, got '" ~ text ~ "'") }}
        {%- endif -%}
        cast('{{ text }}' as date)
    {%- else -%}
        cast('1970-01-01' as date)
    {%- endif -%}
{%- endmacro %}

{#- The run's cut-off: the end of the logical date, (as_of_date + 1) 00:00 UTC, as timestamptz.
    A decision matured by then counts (pipelines/attribution.py). -#}
{% macro run_cutoff() -%}
    (cast({{ as_of_date() }} + 1 as timestamp) at time zone 'UTC')
{%- endmacro %}
