"""The billing domain: its data model and the actors, grouped by what they do."""

from pathlib import Path

from jobs.platform.schedules import accept_schedule_options

# The periodic actors declare periodiq's ``periodic`` option (and ``schedule_window``): a module
# of them imported before jobs.runtime.start() (a test, a benchmark) needs a broker that takes them.
accept_schedule_options()

#: The Jinja2 templates of notification e-mails (``notifications/``) and report files (``reports/``).
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
