"""The dbt marts as Airflow assets: the daily DAG produces them, the retraining DAG reads them."""

from airflow.sdk import Asset

ARM_STATS = Asset("postgres://campaignopt/analytics/arm_stats")
SEGMENT_ARM_STATS = Asset("postgres://campaignopt/analytics/segment_arm_stats")
CUSTOMER_FEATURES = Asset("postgres://campaignopt/analytics/customer_features")
TRAINING_EXAMPLES = Asset("postgres://campaignopt/analytics/training_examples")
CAMPAIGN_DAILY_KPIS = Asset("postgres://campaignopt/analytics/campaign_daily_kpis")

MARTS = [ARM_STATS, SEGMENT_ARM_STATS, CUSTOMER_FEATURES, TRAINING_EXAMPLES, CAMPAIGN_DAILY_KPIS]
