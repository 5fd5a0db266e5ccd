"""The rBridge task YAMLs, installed as `rbridge_tasks.task_configs` (see `rbridge tasks-path`)."""
