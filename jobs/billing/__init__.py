"""The billing domain: its data model and the actors, grouped by what they do."""

from pathlib import Path

#: The Jinja2 templates of notification e-mails (``notifications/``) and report files (``reports/``).
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
