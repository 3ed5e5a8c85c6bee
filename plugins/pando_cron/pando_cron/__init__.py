"""pando-cron: scheduled prompts that fire exactly once however many pando instances run."""
