"""The scheduler process (``python -m scheduler``): fires jobdeck's cron schedules."""
